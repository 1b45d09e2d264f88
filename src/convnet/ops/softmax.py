"""Softmax and log-softmax over any axis (or several), computed stably.

For the values ``x`` along the reduced axes (a row, for scores ``(N, K)`` and ``axis=-1``)::

    softmax(x)     = exp(x - m) / Σ exp(x - m)                    m = max(x): no overflow
    log_softmax(x) = (x - m) - log Σ exp(x - m)                   never log(0)

Backward, with ``y`` the output (the cache holds a reference to it, nothing else)::

    softmax:      dx = y · (dy - Σ dy·y)
    log_softmax:  dx = dy - exp(y) · Σ dy

``axis`` is an int or a tuple of ints of the batch array (negative counts from the end): on an
NHWC map ``axis=-1`` is the channels (ONNX Softmax of an NCHW tensor over axis 1), ``(1, 2)`` the
whole map of each channel.  The sums over the axes are one sum over all of them, as ONNX's
Softmax before opset 13 did over the axes from ``axis`` on.  The classifier's loss
(:mod:`convnet.ops.losses`) uses the same stable form.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import check_float_array, get_array_module
from ..errors import ConfigError, ShapeError
from .checks import check_grad_shape
from .geometry import is_int


def normalize_axes(axis, ndim: int, op: str = "softmax") -> tuple[int, ...]:
    """``axis`` (an int or a tuple of ints) as sorted non-negative axes of a rank-``ndim`` array;
    ConfigError for a non-integer or repeated axis, ShapeError for one out of range."""
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not axes or not all(is_int(a) for a in axes):
        raise ConfigError(f"{op}: `axis` must be an int or a non-empty tuple of ints; received axis={axis!r}.")
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of range for an input of rank {ndim}; expected an axis in "
                             f"[{-ndim}, {ndim - 1}]; received axis={axis!r}.")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ConfigError(f"{op}: `axis` names the same axis twice; received axis={axis!r} for rank {ndim}.")
    return tuple(sorted(out))


@dataclass
class SoftmaxCache:
    y: object  # the output (a reference)
    axes: tuple


def _shifted(x, axes):
    return x - x.max(axis=axes, keepdims=True)


def softmax(x, *, axis=-1):
    """``exp(x - max) / Σ exp(x - max)`` along ``axis`` without a cache: each slice sums to 1.

    >>> softmax(np.array([[1.0, 1.0], [0.0, np.log(3.0)]])).round(6).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    check_float_array(x, "x")
    axes = normalize_axes(axis, x.ndim)
    xp = get_array_module(x)
    e = xp.exp(_shifted(x, axes))
    e /= e.sum(axis=axes, keepdims=True)
    return e


def softmax_forward(x, *, axis=-1):
    """Softmax along ``axis``: returns ``(y, cache)``; the cache is ``y`` itself."""
    y = softmax(x, axis=axis)
    return y, SoftmaxCache(y, normalize_axes(axis, x.ndim))


def softmax_backward(dy, cache: SoftmaxCache):
    """``dx = y · (dy - Σ_axis dy·y)``."""
    y = cache.y
    check_grad_shape(dy, y.shape, "softmax_backward")
    return y * (dy - (dy * y).sum(axis=cache.axes, keepdims=True))


def log_softmax(x, *, axis=-1):
    """``(x - max) - log Σ exp(x - max)`` along ``axis`` without a cache."""
    check_float_array(x, "x")
    axes = normalize_axes(axis, x.ndim, "log_softmax")
    xp = get_array_module(x)
    z = _shifted(x, axes)
    z -= xp.log(xp.exp(z).sum(axis=axes, keepdims=True))
    return z


def log_softmax_forward(x, *, axis=-1):
    """Log-softmax along ``axis``: returns ``(y, cache)``; the cache is ``y`` itself."""
    y = log_softmax(x, axis=axis)
    return y, SoftmaxCache(y, normalize_axes(axis, x.ndim, "log_softmax"))


def log_softmax_backward(dy, cache: SoftmaxCache):
    """``dx = dy - softmax · Σ_axis dy`` (``softmax = exp(y)``)."""
    y = cache.y
    check_grad_shape(dy, y.shape, "log_softmax_backward")
    xp = get_array_module(dy)
    return dy - xp.exp(y) * dy.sum(axis=cache.axes, keepdims=True)
