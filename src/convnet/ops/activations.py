"""Elementwise activations and dropout.

``relu``: ``y = max(0, x)``; its gradient is 1 where ``x > 0`` and 0 elsewhere
(0 at the kink ``x == 0``, as PyTorch), and ``dx`` is 0 wherever ``y <= 0`` whatever
``dy`` holds there.  The cache is the output ``y`` itself (a
reference that the next layer keeps anyway), so ReLU costs no extra memory.

``leaky_relu``: ``y = x`` where ``x > 0``, else ``negative_slope·x`` (Maas et al. 2013; PyTorch's
``F.leaky_relu``); its gradient is 1 where ``x > 0`` and ``negative_slope`` elsewhere (the
kink included, as PyTorch).  ``negative_slope >= 0`` (as Keras), so ``y`` has the sign of ``x``
and the cache is again the output alone: it can be computed in place, like ReLU.

``sigmoid``: ``y = 1 / (1 + exp(-x))``, computed from ``exp(-|x|)`` so that no ``exp`` overflows;
its gradient ``y·(1 - y)`` comes from the output, which is the cache.

``clip``: ``y = min(max(x, min), max)`` (ONNX Clip, ``torch.clamp``; a missing bound is no bound).
Its gradient is ``dy`` inside the interval and 0 outside; *at* a bound it is ``dy`` with
``inclusive=True`` (``torch.clamp``'s backward) and 0 with ``inclusive=False`` (``torch.nn.ReLU6``
and ``Hardtanh``, and convnet's ReLU, whose gradient at 0 is 0).  ``relu6`` is
``clip(x, 0, 6, inclusive=False)``.  NaN stays NaN and gets no gradient.  The cache is a bool
mask (one byte per value) of where the gradient passes.

``identity``: ``y = x`` (the same array), ``dx = dy``: what an ONNX Identity becomes.

``dropout`` is *inverted* dropout: in training each unit is kept with
probability ``1 - rate`` and scaled by ``1 / (1 - rate)``, so inference is the
identity.  The mask comes from the ``numpy.random.Generator`` passed in, so a
seeded generator gives the same mask every run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..backend import check_float_array, get_array_module
from ..errors import ConfigError
from .checks import check_grad_shape
from . import kernels
from .kernels import relu as relu_kernels


def relu(x, *, inplace: bool = False):
    """``max(0, x)`` without a cache (inference); ``inplace=True`` writes it into ``x``."""
    check_float_array(x, "x")
    if kernels.usable(x):
        return relu_kernels.relu(x, inplace=inplace)
    return get_array_module(x).maximum(x, 0, out=x if inplace else None)


def relu_forward(x, *, inplace: bool = False):
    y = relu(x, inplace=inplace)
    return y, y


def relu_backward(dy, cache, *, inplace: bool = False):
    """``dy`` where the output was positive, 0 elsewhere (whatever ``dy`` holds there);
    ``inplace=True`` writes it into ``dy``."""
    y = cache
    check_grad_shape(dy, y.shape, "relu_backward")
    if kernels.usable(dy, y):
        return relu_kernels.relu_backward(dy, y, inplace=inplace)
    xp = get_array_module(dy)
    if inplace:
        xp.putmask(dy, ~(y > 0), dy.dtype.type(0))
        return dy
    return xp.where(y > 0, dy, dy.dtype.type(0))


def check_negative_slope(negative_slope) -> float:
    if (isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float))
            or not math.isfinite(negative_slope) or negative_slope < 0):
        raise ConfigError(
            f"Argument `negative_slope` must be a finite number >= 0; received negative_slope={negative_slope!r}."
        )
    return float(negative_slope)


@dataclass
class LeakyReLUCache:
    y: object  # the output: its sign is the input's (negative_slope >= 0)
    negative_slope: float


def leaky_relu(x, *, negative_slope: float = 0.01, inplace: bool = False):
    """``x`` where ``x > 0``, else ``negative_slope·x``, without a cache (inference);
    ``inplace=True`` writes it into ``x``.  Shape unchanged: ``[[-2, 0, 3]]`` with slope 0.1
    gives ``[[-0.2, 0, 3]]``.
    """
    check_float_array(x, "x")
    slope = x.dtype.type(check_negative_slope(negative_slope))
    y = x if inplace else x.copy()
    y[y < 0] *= slope  # only the negative values are multiplied (-0.0 and NaN stay as they are)
    return y


def leaky_relu_forward(x, *, negative_slope: float = 0.01, inplace: bool = False):
    y = leaky_relu(x, negative_slope=negative_slope, inplace=inplace)
    return y, LeakyReLUCache(y, float(negative_slope))


def leaky_relu_backward(dy, cache: LeakyReLUCache, *, inplace: bool = False):
    """``dy`` where the output was positive, ``negative_slope·dy`` elsewhere; ``inplace=True``
    writes it into ``dy``."""
    check_grad_shape(dy, cache.y.shape, "leaky_relu_backward")
    dx = dy if inplace else dy.copy()
    dx[~(cache.y > 0)] *= dy.dtype.type(cache.negative_slope)
    return dx


# -- sigmoid --------------------------------------------------------------------------------
def sigmoid(x):
    """``1 / (1 + exp(-x))`` without a cache: ``exp(-|x|)`` is at most 1, so no overflow for any
    ``x`` (``y = 1/(1+e)`` for ``x >= 0``, ``e/(1+e)`` below)."""
    check_float_array(x, "x")
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    y = 1 / (1 + e)
    return xp.where(x >= 0, y, e * y).astype(x.dtype, copy=False)


def sigmoid_forward(x):
    """Sigmoid: returns ``(y, cache)``; the cache is ``y`` itself."""
    y = sigmoid(x)
    return y, y


def sigmoid_backward(dy, cache):
    """``dx = dy · y · (1 - y)``."""
    y = cache
    check_grad_shape(dy, y.shape, "sigmoid_backward")
    return dy * (y * (1 - y))


# -- clip -----------------------------------------------------------------------------------
def check_clip_bounds(min, max) -> tuple[float | None, float | None]:  # noqa: A002 (ONNX's and torch's names)
    """``(min, max)`` as floats (None = no bound); ConfigError for NaN, non-numbers or ``min > max``."""
    out = []
    for name, v in (("min", min), ("max", max)):
        if v is None:
            out.append(None)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise ConfigError(f"Argument `{name}` must be a number or None (no bound); received {name}={v!r}.")
        out.append(float(v))
    lo, hi = out
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(f"Argument `min` ({lo:g}) must not be greater than `max` ({hi:g}).")
    return lo, hi


def clip(x, *, min=None, max=None):  # noqa: A002
    """``min(max(x, min), max)`` without a cache (a bound of None is no bound); NaN stays NaN."""
    check_float_array(x, "x")
    lo, hi = check_clip_bounds(min, max)
    xp = get_array_module(x)
    y = x.copy()
    if lo is not None:
        xp.copyto(y, x.dtype.type(lo), where=x < lo)
    if hi is not None:
        xp.copyto(y, x.dtype.type(hi), where=x > hi)
    return y


def clip_forward(x, *, min=None, max=None, inclusive=True):  # noqa: A002
    """Clip: returns ``(y, mask)``, ``mask`` True where the gradient passes — inside the
    interval, and at its bounds too when ``inclusive`` (``torch.clamp``; False: ReLU6/Hardtanh)."""
    y = clip(x, min=min, max=max)
    lo, hi = check_clip_bounds(min, max)
    xp = get_array_module(x)
    mask = xp.ones(x.shape, dtype=bool) if lo is None else (x >= lo if inclusive else x > lo)
    if hi is not None:
        mask &= (x <= hi) if inclusive else (x < hi)
    if lo is None:
        mask &= x == x  # NaN gets no gradient
    return y, mask


def clip_backward(dy, cache):
    """``dy`` where the mask is True, 0 elsewhere."""
    mask = cache
    check_grad_shape(dy, mask.shape, "clip_backward")
    return get_array_module(dy).where(mask, dy, dy.dtype.type(0))


def relu6_forward(x):
    """``min(max(x, 0), 6)`` (MobileNet's ReLU6): :func:`clip_forward` with PyTorch's ReLU6 gradient,
    0 at ``x = 0`` and ``x = 6``."""
    return clip_forward(x, min=0.0, max=6.0, inclusive=False)


# -- identity -------------------------------------------------------------------------------
def identity_forward(x):
    """``y = x`` — the same array, not a copy: returns ``(x, None)``."""
    check_float_array(x, "x")
    return x, None


def identity_backward(dy, cache=None):
    """``dx = dy`` (the same array)."""
    check_float_array(dy, "dy")
    return dy


@dataclass
class DropoutCache:
    mask: object  # bool, True where the unit was kept; None when nothing was dropped
    scale: float


def check_rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) < 1.0:
        raise ConfigError(f"Argument `rate` must be a number in [0, 1); received {rate!r}.")
    return float(rate)


def dropout_forward(x, *, rate, rng, train=True):
    """Inverted dropout: returns ``(y, cache)``; the identity when ``train`` is False or ``rate`` is 0."""
    check_float_array(x, "x")
    rate = check_rate(rate)
    if not train or rate == 0.0:
        return x, DropoutCache(None, 1.0)
    xp = get_array_module(x)
    mask = xp.asarray(rng.random(x.shape) >= rate)
    scale = 1.0 / (1.0 - rate)
    return x * mask * x.dtype.type(scale), DropoutCache(mask, scale)


def dropout_backward(dy, cache: DropoutCache):
    if cache.mask is None:
        return dy
    check_grad_shape(dy, cache.mask.shape, "dropout_backward")
    return dy * cache.mask * dy.dtype.type(cache.scale)
