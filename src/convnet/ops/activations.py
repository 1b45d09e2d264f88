"""Elementwise activations and dropout.

``relu``: ``y = max(0, x)``; its gradient is 1 where ``x > 0`` and 0 elsewhere
(0 at the kink ``x == 0``, as PyTorch), and ``dx`` is 0 wherever ``y <= 0`` whatever
``dy`` holds there.  The cache is the output ``y`` itself (a
reference that the next layer keeps anyway), so ReLU costs no extra memory.

``leaky_relu``: ``y = x`` where ``x > 0``, else ``negative_slope·x`` (Maas et al. 2013; PyTorch's
``F.leaky_relu``); its gradient is 1 where ``x > 0`` and ``negative_slope`` elsewhere (the
kink included, as PyTorch).  ``negative_slope >= 0`` (as Keras), so ``y`` has the sign of ``x``
and the cache is again the output alone: it can be computed in place, like ReLU.

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
