"""2-D convolution (cross-correlation, as every framework computes it) as the notes do it: im2col + GEMM.

Shapes, NHWC / HWIO::

    x  (N, H, W, C)                 activations
    w  (kh, kw, C // groups, K)     kernels
    b  (K,) or None
    y  (N, Ho, Wo, K)               Ho = (H - dh·(kh-1) - 1 + Pt + Pb) / sh + 1, same for Wo

    y[n, i, j, k] = b[k] + Σ_{a, b', c} x_pad[n, i·sh + a·dh, j·sw + b'·dw, g·Cg + c] · w[a, b', c, k]

with ``g = k // (K / groups)`` the group of output channel ``k``.

This is the learner's path, readable top to bottom.  Forward stretches every window into one
row of a column matrix (:func:`~convnet.ops.im2col.im2col`: ``(N·Ho·Wo, kh·kw·C)``) and
multiplies it by the weights as a matrix, one GEMM per group.  Backward recomputes the columns
(they are kh·kw times the input, so the cache keeps only ``x``): ``dw = colsᵀ @ dy`` and
``dcols = dy @ wᵀ``, which :func:`~convnet.ops.im2col.col2im` adds back to the input positions
they were read from.  The batch is cut into chunks whose columns fit in ``workspace_bytes``.

The same op made fast (Winograd, direct loops, small-map GEMMs, blocked columns in reused
buffers, compiled kernels; chosen per layer shape by a plan) is :mod:`convnet.ops.fast`, with
the same signature; the layers run that one, and its tests compare it with this one.

Example (the notes' demo: 5×5×3 input, two 3×3 filters, stride 2, pad 1 → 3×3×2)::

    >>> x = np.ones((1, 5, 5, 3)); w = np.ones((3, 3, 3, 2)); b = np.zeros(2)
    >>> conv2d_forward(x, w, b, stride=2, padding=1)[0].shape
    (1, 3, 3, 2)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .checks import check_grad_shape, check_nhwc, check_same_dtype
from .geometry import Geometry2D, conv_geometry, is_int
from .im2col import col2im, im2col, pad_input, unpad

#: default cap on the column matrix of one chunk of the batch (bytes)
DEFAULT_WORKSPACE_BYTES = 64 * 2**20
#: every ``algorithm`` a convolution accepts; this op runs "auto" and "im2col" (the same thing
#: here), :mod:`convnet.ops.fast` runs them all
ALGORITHMS = ("auto", "im2col", "gemm1x1", "winograd2", "winograd4", "direct", "smallmap")


@dataclass
class ConvCache:
    """What backward needs: the input (a reference, not a copy), the weights and the geometry."""

    x: object
    w: object
    geom: Geometry2D
    groups: int
    has_bias: bool
    algorithm: str
    workspace_bytes: int


def check_conv_args(x, w, b, groups, op="conv2d"):
    """Validate ranks, dtypes, channel counts and groups; return (C, K)."""
    check_nhwc(x, op)
    check_same_dtype(op, x, w=w, b=b)
    if w.ndim != 4:
        raise ShapeError(f"{op}: `w` must be HWIO of rank 4 (kh, kw, C_in/groups, K); received shape {tuple(w.shape)}.")
    if min(w.shape) < 1:
        raise ShapeError(f"{op}: `w` must have every size positive; received shape {tuple(w.shape)}.")
    if not is_int(groups) or groups < 1:
        raise ConfigError(f"{op}: `groups` must be a positive integer; received {groups!r}.")
    groups = int(groups)
    c, k = x.shape[3], w.shape[3]
    if c % groups:
        raise ConfigError(
            f"{op}: input channels C={c} must be divisible by groups={groups}; received x of shape {tuple(x.shape)}."
        )
    if k % groups:
        raise ConfigError(f"{op}: output channels K={k} must be divisible by groups={groups}; received w of shape {tuple(w.shape)}.")
    if w.shape[2] != c // groups:
        raise ShapeError(
            f"{op}: `w` has {w.shape[2]} input channels per group but x has C={c} channels and groups={groups}; "
            f"expected w of shape ({w.shape[0]}, {w.shape[1]}, {c // groups}, {k}) for x of shape {tuple(x.shape)}."
        )
    if b is not None and tuple(b.shape) != (k,):
        raise ShapeError(f"{op}: `b` must have shape ({k},) to match K={k}; received shape {tuple(b.shape)}.")
    return c, k


def check_algorithm(algorithm) -> str:
    """``algorithm`` must be one of :data:`ALGORITHMS`."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"Argument `algorithm` must be one of {ALGORITHMS}; received {algorithm!r}.")
    return algorithm


def conv2d_forward(
    x,
    w,
    b=None,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    fit="error",
    algorithm="auto",
    workspace_bytes=DEFAULT_WORKSPACE_BYTES,
    layer="conv2d",
):
    """Convolve an NHWC batch with HWIO kernels; returns ``(y, cache)``.

    ``padding``: an int, a ``(Ph, Pw)`` pair, ``((top, bottom), (left, right))``,
    ``"same"`` or ``"valid"``.  ``stride``/``dilation``: an int or a pair.
    ``fit``: what to do when the geometry does not divide evenly (see
    :mod:`convnet.ops.geometry`).  ``algorithm``: ``"auto"`` or ``"im2col"`` (the other
    names of :data:`ALGORITHMS` are :mod:`convnet.ops.fast`'s and raise ConfigError here).
    """
    check_conv_args(x, w, b, groups, layer)
    if check_algorithm(algorithm) not in ("auto", "im2col"):
        raise ConfigError(f"algorithm={algorithm!r} is one of the fast algorithms: convnet.ops.fast.conv2d_forward "
                          f"runs it; convnet.ops.conv runs 'im2col' only.")
    xp = get_array_module(x)
    n, h, wd, c = x.shape
    kh, kw, _, k = w.shape
    geom = conv_geometry((h, wd), (kh, kw), stride=stride, padding=padding, dilation=dilation, fit=fit, layer=layer)
    ho, wo = geom.out_hw
    xpad = pad_input(x, geom)
    y = xp.empty((n, ho, wo, k), dtype=x.dtype)
    for n0, n1 in _chunks(n, ho * wo * kh * kw * c * x.itemsize, workspace_bytes):
        cols = im2col(xpad[n0:n1], geom)  # one row per output position, one column per weight
        y2 = y[n0:n1].reshape(-1, k)
        for g, ks in _groups(k, groups):
            w_g = w[:, :, :, ks].reshape(-1, k // groups)  # (kh·kw·Cg, K/groups)
            y2[:, ks] = _group_columns(cols, g, kh * kw, groups) @ w_g
    if b is not None:
        y += b
    return y, ConvCache(x, w, geom, int(groups), b is not None, "im2col", int(workspace_bytes))


def conv2d_backward(dy, cache: ConvCache, *, need_dx=True):
    """Gradients ``(dx, dw, db)`` of a convolution; ``db`` is None when there was no bias.

    ``need_dx=False`` (the first layer of a net in training) skips the data gradient and
    returns ``dx = None``.
    """
    x, w, geom, groups = cache.x, cache.w, cache.geom, cache.groups
    xp = get_array_module(x)
    n, h, wd, c = x.shape
    kh, kw, cg, k = w.shape
    ho, wo = geom.out_hw
    check_grad_shape(dy, (n, ho, wo, k), "conv2d_backward")
    check_same_dtype("conv2d_backward", x, dy=dy)
    xpad = pad_input(x, geom)
    dw = xp.zeros(w.shape, dtype=x.dtype)
    dxpad = xp.zeros(xpad.shape, dtype=x.dtype) if need_dx else None
    for n0, n1 in _chunks(n, ho * wo * kh * kw * c * x.itemsize, cache.workspace_bytes):
        cols = im2col(xpad[n0:n1], geom)
        dy2 = dy[n0:n1].reshape(-1, k)
        dcols = xp.empty((cols.shape[0], kh * kw, groups, cg), dtype=x.dtype) if need_dx else None
        for g, ks in _groups(k, groups):
            w_g = w[:, :, :, ks].reshape(-1, k // groups)
            dw[:, :, :, ks] += (_group_columns(cols, g, kh * kw, groups).T @ dy2[:, ks]).reshape(kh, kw, cg, -1)
            if need_dx:  # the columns' gradient: group g's channels of every kernel position
                dcols[:, :, g] = (dy2[:, ks] @ w_g.T).reshape(-1, kh * kw, cg)
        if need_dx:
            col2im(dcols.reshape(n1 - n0, ho, wo, kh, kw, c), None, geom, out=dxpad[n0:n1])
    dx = xp.ascontiguousarray(unpad(dxpad, geom, (h, wd))) if need_dx else None
    db = dy.sum(axis=(0, 1, 2)) if cache.has_bias else None
    return dx, dw, db


def conv2d_data_grad(dy, w, geom: Geometry2D, x_shape, *, groups=1, workspace_bytes=DEFAULT_WORKSPACE_BYTES):
    """The data gradient alone, ``dx (x_shape)`` of a convolution of geometry ``geom`` by ``w``
    from ``dy (N, Ho, Wo, K)``: the column gradients ``dy @ wᵀ`` (one GEMM per group) added back by
    :func:`~convnet.ops.im2col.col2im` — :func:`conv2d_backward`'s ``dx`` without ``x``.  It is
    the forward of a transposed convolution (:mod:`convnet.ops.conv_transpose`).  Chunks of the
    batch keep the column gradients within ``workspace_bytes``."""
    xp = get_array_module(dy)
    n, h, wd, c = x_shape
    kh, kw, cg, k = w.shape
    ho, wo = geom.out_hw
    dxpad = xp.zeros((n, geom.height.padded_size, geom.width.padded_size, c), dtype=dy.dtype)
    for n0, n1 in _chunks(n, ho * wo * kh * kw * c * dy.itemsize, workspace_bytes):
        dy2 = dy[n0:n1].reshape(-1, k)
        if groups == 1:  # one GEMM straight into the column gradients
            dcols = dy2 @ w.reshape(-1, k).T
        else:
            dcols = xp.empty((dy2.shape[0], kh * kw, groups, cg), dtype=dy.dtype)
            for g, ks in _groups(k, groups):
                w_g = w[:, :, :, ks].reshape(-1, k // groups)
                dcols[:, :, g] = (dy2[:, ks] @ w_g.T).reshape(-1, kh * kw, cg)
        col2im(dcols.reshape(n1 - n0, ho, wo, kh, kw, c), None, geom, out=dxpad[n0:n1])
    return xp.ascontiguousarray(unpad(dxpad, geom, (h, wd)))


def _chunks(n: int, per_image: int, workspace_bytes: int):
    """``(n0, n1)``: images per chunk such that their columns (``per_image`` bytes each) fit in
    ``workspace_bytes`` — at least one image a chunk."""
    step = max(1, min(n, int(workspace_bytes) // max(per_image, 1)))
    for n0 in range(0, n, step):
        yield n0, min(n, n0 + step)


def _groups(k: int, groups: int):
    """``(g, slice of its output channels)`` for each group."""
    kg = k // groups
    for g in range(groups):
        yield g, slice(g * kg, (g + 1) * kg)


def _group_columns(cols, g: int, positions: int, groups: int):
    """The columns of group ``g``, ``(rows, kh·kw·Cg)``: of every kernel position, its channels
    ``g·Cg .. (g+1)·Cg`` (all of ``cols`` when ungrouped)."""
    if groups == 1:
        return cols
    rows = cols.shape[0]
    return cols.reshape(rows, positions, groups, -1)[:, :, g].reshape(rows, -1)
