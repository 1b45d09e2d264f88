"""Max, average, Lp (L2) and global pooling over NHWC batches.

Each depth slice is pooled on its own over ``F_h × F_w`` windows moved by
``S_h, S_w`` (default ``S = F``, the notes' usual ``F=2, S=2`` and overlapping
``F=3, S=2``), their taps ``d_h, d_w`` apart (``dilation``, default 1: ONNX MaxPool's and
AveragePool's ``dilations``, PyTorch's ``max_pool2d(dilation=)``)::

    Ho = (H - F'_h + P_top + P_bottom) / S_h + 1,   F' = d·(F - 1) + 1,   Wo likewise,   D unchanged

Every op is a loop over the ``F_h·F_w`` kernel taps, each a strided slice of
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

**Lp pooling**: ``y = (Σ |x|^p)^(1/p)`` over the window, for any real ``p >= 1`` (ONNX
LpPool; zero padding adds nothing); its gradient ``dx = dy · sign(x)·|x|^(p-1) / y^(p-1)`` is
taken as 0 where ``y == 0``.  ``p = 2`` is **L2 pooling** ``sqrt(Σ x²)`` (``l2_pool2d_*``, the same
op).  PyTorch's ``lp_pool2d`` sums ``x^p`` without the absolute value: the same for even ``p`` or
non-negative input.

**Global pooling** reduces the whole map: ``(N, H, W, C) -> (N, C)`` — average, max (the
argmax of each channel kept, first maximum in row-major order wins ties, NaN wins), Lp.
"""
from __future__ import annotations

import math
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
    x: object = None  # Lp pooling: input and output references
    y: object = None
    p: float = 2.0  # Lp pooling: the norm's order


def _offset_slice(geom: Geometry2D, a: int, b: int):
    """The strided slice of the padded input read by kernel tap ``(a, b)`` (offset ``(a·dh, b·dw)``)."""
    ho, wo = geom.out_hw
    sh, sw = geom.stride
    r, q = a * geom.height.dilation, b * geom.width.dilation
    return (
        slice(None),
        slice(r, r + sh * (ho - 1) + 1, sh),
        slice(q, q + sw * (wo - 1) + 1, sw),
        slice(None),
    )


def _offsets(geom: Geometry2D):
    kh, kw = geom.kernel
    return [(a, b) for a in range(kh) for b in range(kw)]


def _geometry(x, pool_size, stride, padding, fit, layer, dilation=1):
    check_nhwc(x, layer)
    geom = pool_geometry(x.shape[1:3], pool_size, stride=stride, padding=padding, dilation=dilation, fit=fit,
                         layer=layer)
    kh, kw = geom.height.effective_kernel, geom.width.effective_kernel
    (pt, pb), (pl, pr) = geom.pads
    if max(pt, pb - geom.height.fit_extra) > kh // 2 or max(pl, pr - geom.width.fit_extra) > kw // 2:
        what = "pool size" if geom.dilation == (1, 1) else "dilated pool extent"
        raise ConfigError(
            f"{layer}: padding {geom.pads} is more than half the {what} {(kh, kw)}; expected at most "
            f"({kh // 2}, {kw // 2}) so that every window covers real input."
        )
    for ax, name in ((geom.height, "height"), (geom.width, "width")):
        if ax.dilation > 1 and not _windows_read_input(ax):
            raise ConfigError(
                f"{layer}: with dilation {geom.dilation} and padding {geom.pads}, some window along the {name} "
                f"reads padding only (its taps skip the {ax.size} input row(s)); use less padding or dilation."
            )
    return geom


def _windows_read_input(ax: AxisGeometry) -> bool:
    """Every window along the axis has a tap on the input (not in the padding)."""
    taps = np.arange(ax.out)[:, None] * ax.stride + np.arange(ax.kernel)[None, :] * ax.dilation
    inside = (taps >= ax.pad_before) & (taps < ax.pad_before + ax.size)
    return bool(inside.any(axis=1).all())


# -- max ------------------------------------------------------------------------------------
def max_pool2d(x, *, pool_size=2, stride=None, padding=0, dilation=1, fit="error", layer="max_pool2d"):
    """Max pooling without switches (inference): returns ``y`` only."""
    xp = get_array_module(x)
    geom = _geometry(x, pool_size, stride, padding, fit, layer, dilation)
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
    """Use the numba kernels: NumPy arrays, numba available, switches that fit a uint8, no dilation."""
    return (xp is np and kernels.enabled() and geom.kernel[0] * geom.kernel[1] <= 256
            and geom.dilation == (1, 1))


def max_pool2d_forward(x, *, pool_size=2, stride=None, padding=0, dilation=1, fit="error", layer="max_pool2d"):
    """Max pooling keeping the switches for backward: returns ``(y, cache)``.

    The maximum is a chain of ``np.maximum`` over the offsets (NaN propagates); the
    switches are then written in reverse offset order wherever an offset equals the
    maximum, so the first maximum wins ties.  Windows whose maximum is NaN point at
    their first NaN.  Switches count taps, ``a·F_w + b``, whatever the dilation.
    """
    xp = get_array_module(x)
    geom = _geometry(x, pool_size, stride, padding, fit, layer, dilation)
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

    Windows that do not overlap (``S >= F'``) write their slice directly; overlapping
    windows add into it.
    """
    xp = get_array_module(dy)
    geom = cache.geom
    check_grad_shape(dy, cache.switches.shape, "max_pool2d_backward")
    n, h, w, c = cache.x_shape
    if _compiled(xp, geom) and cache.switches.dtype == np.uint8:
        return pool_kernels.max_pool_backward(dy, cache.switches, geom.kernel, geom.stride, _before(geom), cache.x_shape)
    dxpad = xp.zeros((n, geom.height.padded_size, geom.width.padded_size, c), dtype=dy.dtype)
    overlap = geom.stride[0] < geom.height.effective_kernel or geom.stride[1] < geom.width.effective_kernel
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
    x, *, pool_size=2, stride=None, padding=0, dilation=1, fit="error", count_include_pad=True, layer="avg_pool2d"
):
    """Average pooling: returns ``(y, cache)``.  The divisor counts the window's taps (padding
    taps too with ``count_include_pad``), so a dilated window divides by at most ``F_h·F_w``."""
    xp = get_array_module(x)
    geom = _geometry(x, pool_size, stride, padding, fit, layer, dilation)
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


# -- Lp (L2) --------------------------------------------------------------------------------
def check_p(p) -> float:
    """The order of an Lp pooling: a finite real number ``>= 1``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 1:
        raise ConfigError(f"Argument `p` must be a finite number >= 1 (the order of the Lp norm); received p={p!r}.")
    return float(p)


def _abs_pow(xp, a, p: float):
    """``|a|^p`` (``a·a`` for p = 2, ``|a|`` for p = 1: exact and quick)."""
    if p == 2.0:
        return a * a
    if p == 1.0:
        return xp.abs(a)
    return xp.abs(a) ** a.dtype.type(p)


def _root(xp, s, p: float):
    """``s^(1/p)`` in place."""
    if p == 2.0:
        return xp.sqrt(s, out=s)
    if p == 1.0:
        return s
    return xp.power(s, s.dtype.type(1.0 / p), out=s)


def _lp_scale(xp, dy, y, p: float):
    """``dy / y^(p-1)``, 0 where ``y == 0``."""
    safe = xp.where(y > 0, y, 1)
    denom = safe if p == 2.0 else safe ** y.dtype.type(p - 1)
    return xp.where(y > 0, dy / denom, 0).astype(dy.dtype, copy=False)


def _lp_slope(xp, a, p: float):
    """``d|a|^p / da / p = sign(a)·|a|^(p-1)`` (``a`` for p = 2, ``sign(a)`` for p = 1)."""
    if p == 2.0:
        return a
    if p == 1.0:
        return xp.sign(a)
    return xp.sign(a) * xp.abs(a) ** a.dtype.type(p - 1)


def lp_pool2d_forward(x, *, p=2, pool_size=2, stride=None, padding=0, dilation=1, fit="error", layer="lp_pool2d"):
    """Lp-norm pooling ``y = (Σ_window |x|^p)^(1/p)``: returns ``(y, cache)`` (the cache keeps
    references to ``x`` and ``y``)."""
    xp = get_array_module(x)
    p = check_p(p)
    geom = _geometry(x, pool_size, stride, padding, fit, layer, dilation)
    xpad = pad_input(x, geom)
    powered = _abs_pow(xp, xpad, p)
    offsets = _offsets(geom)
    y = powered[_offset_slice(geom, *offsets[0])].copy()
    for a, b in offsets[1:]:
        y += powered[_offset_slice(geom, a, b)]
    _root(xp, y, p)
    return y, PoolCache(tuple(x.shape), geom, x=x, y=y, p=p)


def lp_pool2d_backward(dy, cache: PoolCache):
    """``dx = Σ_windows dy · sign(x)·|x|^(p-1) / y^(p-1)``, 0 through windows whose ``y`` is 0."""
    xp = get_array_module(dy)
    geom = cache.geom
    n, h, w, c = cache.x_shape
    check_grad_shape(dy, cache.y.shape, "lp_pool2d_backward")
    g = _lp_scale(xp, dy, cache.y, cache.p)
    xpad = pad_input(cache.x, geom)
    slope = _lp_slope(xp, xpad, cache.p)
    dxpad = xp.zeros(xpad.shape, dtype=dy.dtype)
    for a, b in _offsets(geom):
        sl = _offset_slice(geom, a, b)
        dxpad[sl] += g * slope[sl]
    return unpad(dxpad, geom, (h, w))


def l2_pool2d_forward(x, *, pool_size=2, stride=None, padding=0, dilation=1, fit="error", layer="l2_pool2d"):
    """L2-norm pooling ``y = sqrt(Σ_window x²)``: :func:`lp_pool2d_forward` with ``p = 2``."""
    return lp_pool2d_forward(x, p=2, pool_size=pool_size, stride=stride, padding=padding, dilation=dilation, fit=fit,
                             layer=layer)


def l2_pool2d_backward(dy, cache: PoolCache):
    """:func:`lp_pool2d_backward` (``dx = dy · x / y``, 0 where ``y == 0``)."""
    check_grad_shape(dy, cache.y.shape, "l2_pool2d_backward")
    return lp_pool2d_backward(dy, cache)


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


# -- global max -----------------------------------------------------------------------------
@dataclass
class GlobalMaxCache:
    x_shape: tuple
    argmax: object  # (N, C): the row-major position ``i·W + j`` of each channel's maximum


def global_max_pool_forward(x):
    """Maximum over height and width: ``(N, H, W, C) -> (N, C)``, keeping each channel's argmax.

    The first maximum in row-major order (top row first, left to right) wins ties and gets the
    whole gradient, as in max pooling; a NaN wins (the first NaN).
    """
    check_nhwc(x, "global_max_pool")
    xp = get_array_module(x)
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    argmax = flat.argmax(axis=1)  # first occurrence; NaN counts as the maximum
    y = flat[xp.arange(n)[:, None], argmax, xp.arange(c)[None, :]]
    return y, GlobalMaxCache(tuple(x.shape), argmax)


def global_max_pool_backward(dy, cache: GlobalMaxCache):
    """Each ``dy[n, c]`` to the position of its channel's maximum; 0 elsewhere."""
    xp = get_array_module(dy)
    n, h, w, c = cache.x_shape
    check_grad_shape(dy, (n, c), "global_max_pool_backward")
    dx = xp.zeros((n, h * w, c), dtype=dy.dtype)
    dx[xp.arange(n)[:, None], cache.argmax, xp.arange(c)[None, :]] = dy
    return dx.reshape(cache.x_shape)


# -- global Lp ------------------------------------------------------------------------------
def global_lp_pool_forward(x, *, p=2):
    """``(Σ_{H,W} |x|^p)^(1/p)`` per channel: ``(N, H, W, C) -> (N, C)`` (ONNX GlobalLpPool)."""
    check_nhwc(x, "global_lp_pool")
    xp = get_array_module(x)
    p = check_p(p)
    y = _abs_pow(xp, x, p).sum(axis=(1, 2))
    _root(xp, y, p)
    return y, PoolCache(tuple(x.shape), None, x=x, y=y, p=p)


def global_lp_pool_backward(dy, cache: PoolCache):
    """``dx = dy · sign(x)·|x|^(p-1) / y^(p-1)`` (0 for a channel whose ``y`` is 0)."""
    xp = get_array_module(dy)
    n, h, w, c = cache.x_shape
    check_grad_shape(dy, (n, c), "global_lp_pool_backward")
    g = _lp_scale(xp, dy, cache.y, cache.p)
    return g[:, None, None, :] * _lp_slope(xp, cache.x, cache.p)
