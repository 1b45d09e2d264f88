"""Max, average and L2 pooling over NHWC batches.

Each depth slice is pooled on its own over ``F_h × F_w`` windows moved by
``S_h, S_w`` (default ``S = F``, the notes' usual ``F=2, S=2`` and overlapping
``F=3, S=2``)::

    Ho = (H - F_h + P_top + P_bottom) / S_h + 1,   Wo likewise,   D unchanged

Every op is a loop over the ``F_h·F_w`` kernel offsets, each a strided slice of
the padded input (a view: no copy, no im2col).

**Max pooling and its switches.**  ``max_pool2d_forward`` records, for every
output element, which window position held the maximum (the notes'
"switches"), as a small integer ``a·F_w + b``.  Backward routes the whole
upstream gradient to that one position.  *Ties*: the first maximum in
row-major window order (top row first, then left to right) wins and gets the
whole gradient, the others get zero — the same rule as PyTorch's CPU kernel.
A NaN in a window wins (NaN propagates, as in PyTorch).  Padding is ``-inf``
for max pooling, so a padded position is never the maximum of a window that
also covers real input.  With numba installed, max pooling runs compiled loops
(:mod:`convnet.ops.kernels.pool`) that read each window once; the NumPy offset
loops below remain the fallback and the tests' oracle for them.

**Average pooling** divides by the window size counting explicit zero padding
(``count_include_pad=True``, PyTorch's default) or only real input positions
(``False``, Keras's ``"same"``); rows added by ``fit="pad"`` never count.

**L2 pooling**: ``y = sqrt(Σ x²)`` over the window (PyTorch ``lp_pool2d`` with
p=2); its gradient ``dx = dy · x / y`` is taken as 0 where ``y == 0``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError
from .checks import check_grad_shape, check_nhwc
from .geometry import AxisGeometry, Geometry2D, pool_geometry
from . import kernels
from .kernels import pool as pool_kernels
from .im2col import pad_input, unpad


@dataclass
class PoolCache:
    x_shape: tuple
    geom: Geometry2D
    switches: object = None  # max pooling: argmax index per output element
    divisor: object = None  # average pooling: (Ho, Wo, 1) window counts
    x: object = None  # L2 pooling: input and output references
    y: object = None


def _offset_slice(geom: Geometry2D, a: int, b: int):
    """The strided slice of the padded input read by kernel offset ``(a, b)``."""
    ho, wo = geom.out_hw
    sh, sw = geom.stride
    return (
        slice(None),
        slice(a, a + sh * (ho - 1) + 1, sh),
        slice(b, b + sw * (wo - 1) + 1, sw),
        slice(None),
    )


def _offsets(geom: Geometry2D):
    kh, kw = geom.kernel
    return [(a, b) for a in range(kh) for b in range(kw)]


def _geometry(x, pool_size, stride, padding, fit, layer):
    check_nhwc(x, layer)
    geom = pool_geometry(x.shape[1:3], pool_size, stride=stride, padding=padding, fit=fit, layer=layer)
    kh, kw = geom.kernel
    (pt, pb), (pl, pr) = geom.pads
    if max(pt, pb - geom.height.fit_extra) > kh // 2 or max(pl, pr - geom.width.fit_extra) > kw // 2:
        raise ConfigError(
            f"{layer}: padding {geom.pads} is more than half the pool size {geom.kernel}; expected at most "
            f"({kh // 2}, {kw // 2}) so that every window covers real input."
        )
    return geom


# -- max ------------------------------------------------------------------------------------
def max_pool2d(x, *, pool_size=2, stride=None, padding=0, fit="error", layer="max_pool2d"):
    """Max pooling without switches (inference): returns ``y`` only."""
    xp = get_array_module(x)
    geom = _geometry(x, pool_size, stride, padding, fit, layer)
    if _compiled(xp, geom):
        return pool_kernels.max_pool_forward(x, geom.kernel, geom.stride, _before(geom), geom.out_hw, False)[0]
    xpad = pad_input(x, geom, value=-np.inf)
    offsets = _offsets(geom)
    y = xpad[_offset_slice(geom, *offsets[0])].copy()
    for a, b in offsets[1:]:
        xp.maximum(y, xpad[_offset_slice(geom, a, b)], out=y)
    return y


def _before(geom: Geometry2D) -> tuple[int, int]:
    return (geom.height.pad_before, geom.width.pad_before)


def _compiled(xp, geom: Geometry2D) -> bool:
    """Use the numba kernels: NumPy arrays, numba available, switches that fit a uint8."""
    return xp is np and kernels.enabled() and geom.kernel[0] * geom.kernel[1] <= 256


def max_pool2d_forward(x, *, pool_size=2, stride=None, padding=0, fit="error", layer="max_pool2d"):
    """Max pooling keeping the switches for backward: returns ``(y, cache)``.

    The maximum is a chain of ``np.maximum`` over the offsets (NaN propagates); the
    switches are then written in reverse offset order wherever an offset equals the
    maximum, so the first maximum wins ties.  Windows whose maximum is NaN point at
    their first NaN.
    """
    xp = get_array_module(x)
    geom = _geometry(x, pool_size, stride, padding, fit, layer)
    if _compiled(xp, geom):
        y, switches = pool_kernels.max_pool_forward(x, geom.kernel, geom.stride, _before(geom), geom.out_hw, True)
        return y, PoolCache(tuple(x.shape), geom, switches=switches)
    xpad = pad_input(x, geom, value=-np.inf)
    offsets = _offsets(geom)
    y = xpad[_offset_slice(geom, *offsets[0])].copy()
    for a, b in offsets[1:]:
        xp.maximum(y, xpad[_offset_slice(geom, a, b)], out=y)
    # first offset equal to the maximum, without branches (a masked copy with a random mask
    # mispredicts: 15x slower): switches += idx · (hit & ~found); found |= hit
    switches = xp.zeros(y.shape, dtype=np.uint8 if len(offsets) <= 256 else np.int32)
    found = xp.zeros(y.shape, dtype=bool)
    hit = xp.empty(y.shape, dtype=bool)
    for idx, (a, b) in enumerate(offsets):
        xp.equal(xpad[_offset_slice(geom, a, b)], y, out=hit)
        if idx:
            xp.greater(hit, found, out=hit)  # hit & ~found
            switches += hit.view(np.uint8) * switches.dtype.type(idx) if switches.dtype == np.uint8 else hit * idx
        xp.logical_or(found, hit, out=found)
    if not found.all():  # windows whose maximum is NaN: point at their first NaN
        nan = ~found
        for idx in range(len(offsets) - 1, -1, -1):
            xp.copyto(switches, idx, where=nan & xp.isnan(xpad[_offset_slice(geom, *offsets[idx])]))
    return y, PoolCache(tuple(x.shape), geom, switches=switches)


def max_pool2d_backward(dy, cache: PoolCache):
    """Route each upstream gradient to the input position its switch names.

    Windows that do not overlap (``S >= F``) write their slice directly; overlapping
    windows add into it.
    """
    xp = get_array_module(dy)
    geom = cache.geom
    check_grad_shape(dy, cache.switches.shape, "max_pool2d_backward")
    n, h, w, c = cache.x_shape
    if _compiled(xp, geom) and cache.switches.dtype == np.uint8:
        return pool_kernels.max_pool_backward(dy, cache.switches, geom.kernel, geom.stride, _before(geom), cache.x_shape)
    dxpad = xp.zeros((n, geom.height.padded_size, geom.width.padded_size, c), dtype=dy.dtype)
    overlap = any(s < k for s, k in zip(geom.stride, geom.kernel))
    hit = xp.empty(dy.shape, dtype=bool)
    for idx, (a, b) in enumerate(_offsets(geom)):
        xp.equal(cache.switches, idx, out=hit)
        view = dxpad[_offset_slice(geom, a, b)]
        if overlap:
            view += dy * hit
        else:
            xp.multiply(dy, hit, out=view)
    return unpad(dxpad, geom, (h, w))


# -- average --------------------------------------------------------------------------------
def _axis_counts(ax: AxisGeometry, count_include_pad: bool):
    """How many counted rows each window along one axis covers."""
    if count_include_pad:
        lo, hi = 0, ax.padded_size - ax.fit_extra
    else:
        lo, hi = ax.pad_before, ax.pad_before + ax.size
    starts = np.arange(ax.out) * ax.stride
    taps = starts[:, None] + np.arange(ax.kernel)[None, :] * ax.dilation
    return ((taps >= lo) & (taps < hi)).sum(axis=1)


def _divisor(geom: Geometry2D, count_include_pad: bool, xp, dtype):
    counts = np.outer(_axis_counts(geom.height, count_include_pad), _axis_counts(geom.width, count_include_pad))
    return xp.asarray(counts.reshape(geom.height.out, geom.width.out, 1).astype(dtype))


def avg_pool2d_forward(
    x, *, pool_size=2, stride=None, padding=0, fit="error", count_include_pad=True, layer="avg_pool2d"
):
    """Average pooling: returns ``(y, cache)``."""
    xp = get_array_module(x)
    geom = _geometry(x, pool_size, stride, padding, fit, layer)
    xpad = pad_input(x, geom)
    offsets = _offsets(geom)
    y = xpad[_offset_slice(geom, *offsets[0])].copy()
    for a, b in offsets[1:]:
        y += xpad[_offset_slice(geom, a, b)]
    divisor = _divisor(geom, count_include_pad, xp, x.dtype)
    y /= divisor
    return y, PoolCache(tuple(x.shape), geom, divisor=divisor)


def avg_pool2d_backward(dy, cache: PoolCache):
    xp = get_array_module(dy)
    geom = cache.geom
    n, h, w, c = cache.x_shape
    check_grad_shape(dy, (n, *geom.out_hw, c), "avg_pool2d_backward")
    g = dy / cache.divisor
    dxpad = xp.zeros((n, geom.height.padded_size, geom.width.padded_size, c), dtype=dy.dtype)
    for a, b in _offsets(geom):
        dxpad[_offset_slice(geom, a, b)] += g
    return unpad(dxpad, geom, (h, w))


# -- L2 -------------------------------------------------------------------------------------
def l2_pool2d_forward(x, *, pool_size=2, stride=None, padding=0, fit="error", layer="l2_pool2d"):
    """L2-norm pooling ``y = sqrt(Σ_window x²)``: returns ``(y, cache)``."""
    xp = get_array_module(x)
    geom = _geometry(x, pool_size, stride, padding, fit, layer)
    xpad = pad_input(x, geom)
    sq = xpad * xpad
    offsets = _offsets(geom)
    y = sq[_offset_slice(geom, *offsets[0])].copy()
    for a, b in offsets[1:]:
        y += sq[_offset_slice(geom, a, b)]
    xp.sqrt(y, out=y)
    return y, PoolCache(tuple(x.shape), geom, x=x, y=y)


def l2_pool2d_backward(dy, cache: PoolCache):
    xp = get_array_module(dy)
    geom = cache.geom
    n, h, w, c = cache.x_shape
    check_grad_shape(dy, cache.y.shape, "l2_pool2d_backward")
    y = cache.y
    safe = xp.where(y > 0, y, 1)
    g = xp.where(y > 0, dy / safe, 0)
    xpad = pad_input(cache.x, geom)
    dxpad = xp.zeros(xpad.shape, dtype=dy.dtype)
    for a, b in _offsets(geom):
        sl = _offset_slice(geom, a, b)
        dxpad[sl] += g * xpad[sl]
    return unpad(dxpad, geom, (h, w))


# -- global average -------------------------------------------------------------------------
def global_avg_pool_forward(x):
    """Mean over height and width: ``(N, H, W, C) -> (N, C)`` (GoogLeNet's and ResNet's top)."""
    check_nhwc(x, "global_avg_pool")
    return x.mean(axis=(1, 2)), tuple(x.shape)


def global_avg_pool_backward(dy, cache):
    xp = get_array_module(dy)
    n, h, w, c = cache
    check_grad_shape(dy, (n, c), "global_avg_pool_backward")
    return xp.broadcast_to((dy / (h * w))[:, None, None, :], cache).copy()
