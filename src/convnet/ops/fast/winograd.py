"""Winograd minimal filtering for 3×3, stride-1 convolution (Lavin & Gray 2015).

One output tile of ``m × m`` from an input tile of ``α × α`` (``α = m + 2``)::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

so F(2×2, 3×3) does 16 multiplies for 4 outputs (4 per output instead of 9) and
F(4×4, 3×3) 36 for 16 (2.25 per output, 4× fewer).  Over a batch the element-wise
product becomes ``α²`` independent GEMMs over channels::

    V[ξ] (T, C) = transformed input tiles,  U[ξ] (C, K) = transformed filters,
    M[ξ] = V[ξ] @ U[ξ],   Y = kron(Aᵀ, Aᵀ) @ M        (ξ = 0 .. α²-1, T = tiles)

All three transforms are single GEMMs with Kronecker matrices.  Backward:

* data gradient: the same forward on ``dy`` with the filter rotated 180° and C/K
  swapped (padding ``2 - p``);
* weight gradient: back through the graph — ``dM = kron(Aᵀ,Aᵀ)ᵀ @ tiles(dy)``,
  ``dU[ξ] = V[ξ]ᵀ @ dM[ξ]``, ``dw = kron(G,G)ᵀ @ dU``.

The transform matrices come from Cook–Toom interpolation at chosen points:
``Aᵀ[j, i] = p_i^j``, ``G[i, k] = p_i^k / Π_{j≠i}(p_i - p_j)`` (plus the point at
infinity), and ``Bᵀ`` solved exactly from the requirement that the algorithm
computes a correlation.  F(4,3) uses the points ``0, 1, -1, 1/2, -2, ∞``: on a
16×16×128 layer in float32 its error against a float64 reference is 1.5e-6
RMS and 3.2e-6 max (relative), against 2.3e-6 and 7.8e-6 for the textbook
``0, ±1, ±2, ∞`` (im2col: 3.0e-7 and 7.1e-7).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...backend import as_strided, get_array_module
from .. import kernels, scratch
from ..geometry import Geometry2D
from ..kernels import winograd as tile_kernels
from . import batched

#: interpolation points (the point at infinity is implied) per output tile size m
POINTS = {2: (0.0, 1.0, -1.0), 4: (0.0, 1.0, -1.0, 0.5, -2.0)}
#: tiles per block on the compiled path: V and M of a block stay in the last-level cache while
#: the α² GEMMs stay wide (1024-2048 tiles ran fastest at C = K = 64-256: docs/tuning.md)
BLOCK_TILES = 2048


def _construct(points, m: int, r: int = 3):
    """Aᵀ (m×α), G (α×r), Bᵀ (α×α) in float64 for F(m, r) at ``points`` (+ infinity)."""
    p = np.asarray(points, dtype=np.float64)
    alpha = m + r - 1
    if len(p) != alpha - 1:
        raise ValueError(f"F({m},{r}) needs {alpha - 1} finite points; received {len(p)}")
    at = np.zeros((m, alpha))
    at[:, :-1] = p[None, :] ** np.arange(m)[:, None]
    at[-1, -1] = 1.0
    g = np.zeros((alpha, r))
    for i, pi in enumerate(p):
        f = np.prod([pi - pj for j, pj in enumerate(p) if j != i])
        g[i] = pi ** np.arange(r) / f
    g[-1, -1] = 1.0
    # Bᵀ from Σ_i Aᵀ[j,i] G[i,k] Bᵀ[i,l] = [l == j + k] for every j < m, k < r, l < α
    rows, rhs = [], []
    for j in range(m):
        for k in range(r):
            coef = at[j] * g[:, k]  # over i
            for l in range(alpha):
                row = np.zeros((alpha, alpha))
                row[:, l] = coef
                rows.append(row.reshape(-1))
                rhs.append(1.0 if l == j + k else 0.0)
    bt, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    bt = bt.reshape(alpha, alpha)
    bt[np.abs(bt) < 1e-12] = 0.0
    return at, g, bt


@lru_cache(maxsize=None)
def winograd_matrices(m: int, points: tuple | None = None):
    """``(Aᵀ, G, Bᵀ)`` for F(m×m, 3×3) as float64 arrays."""
    at, g, bt = _construct(POINTS[m] if points is None else points, m)
    return at, g, bt


@lru_cache(maxsize=None)
def _kron(m: int, dtype: str, xp_name: str = "numpy"):
    at, g, bt = winograd_matrices(m)
    return tuple(np.kron(a, a).astype(dtype) for a in (at, g, bt))


def _kronecker(m, dtype, xp):
    ka, kg, kb = _kron(m, np.dtype(dtype).name)
    if xp is not np:
        return xp.asarray(ka), xp.asarray(kg), xp.asarray(kb)
    return ka, kg, kb


def _tiles(xpad, m: int, th: int, tw: int):
    """``(α², N·th·tw·C)``: overlapping α×α tiles at stride m, tile-position-major (one copy)."""
    xp = get_array_module(xpad)
    n, _, _, c = xpad.shape
    a = m + 2
    s_n, s_h, s_w, s_c = xpad.strides
    view = as_strided(xpad, (a, a, n, th, tw, c), (s_h, s_w, s_n, s_h * m, s_w * m, s_c))
    return xp.ascontiguousarray(view).reshape(a * a, n * th * tw * c)


def _pad_to_tiles(x, pads, m: int, out_hw):
    """Zero-pad NHWC ``x`` by ``pads`` and further at the bottom/right to a whole number of tiles."""
    xp = get_array_module(x)
    (pt, pb), (pl, pr) = pads
    ho, wo = out_hw
    th, tw = -(-ho // m), -(-wo // m)
    need_h, need_w = th * m + 2, tw * m + 2
    n, h, w, c = x.shape
    xpad = xp.zeros((n, need_h, need_w, c), dtype=x.dtype)
    xpad[:, pt : pt + h, pl : pl + w, :] = x
    return xpad, th, tw


def transform_filter(w, m: int, *, rotated: bool = False):
    """``U (α², C, K)`` from HWIO ``w (3, 3, C, K)``.

    ``rotated=True``: ``U (α², K, C)`` of the filter rotated 180° with C and K swapped (the data
    gradient's), without copying ``w`` into that layout: the flip reverses the kernel's rows
    and columns, i.e. the columns of G (of ``kron(G, G)`` on the NumPy path), and the swap is a
    transposed view of each ``U[ξ]`` that the GEMMs take as it is (a contiguous rotated copy of
    wide weights costs more than the transform itself).  With numba the
    separable compiled transform (:func:`convnet.ops.kernels.winograd.transform_filter`) runs;
    the Kronecker GEMM below stays as its oracle.
    """
    _, _, c, k = w.shape
    if kernels.usable(w):
        _, g, _ = winograd_matrices(m)
        g = np.ascontiguousarray(g[:, ::-1] if rotated else g, dtype=w.dtype)
        u = np.empty(((m + 2) ** 2, c, k), dtype=w.dtype)
        tile_kernels.transform_filter(np.ascontiguousarray(w), g, out=u)
        return u.transpose(0, 2, 1) if rotated else u
    _, kg, _ = _kronecker(m, w.dtype, get_array_module(w))
    if rotated:
        return (kg[:, ::-1] @ w.reshape(9, c * k)).reshape((m + 2) ** 2, c, k).transpose(0, 2, 1)
    return (kg @ w.reshape(9, c * k)).reshape((m + 2) ** 2, c, k)


def filter_gradient(du, m: int):
    """``dw (3, 3, C, K) = Gᵀ dU G`` from the gradient ``du (α², C, K)`` of :func:`transform_filter`'s
    output: compiled and separable with numba (sums of six terms, padded: ``6·(3·α + 9)`` multiply-adds
    a C·K pair), else the Kronecker GEMM ``kron(G, G)ᵀ · dU`` (the oracle)."""
    a2, c, k = du.shape
    if kernels.usable(du):
        _, g, _ = winograd_matrices(m)
        dw = np.empty((3, 3, c, k), dtype=du.dtype)
        tile_kernels.filter_gradient(np.ascontiguousarray(du), np.ascontiguousarray(g, dtype=du.dtype), out=dw)
        return dw
    _, kg, _ = _kronecker(m, du.dtype, get_array_module(du))
    return (kg.T @ du.reshape(a2, c * k)).reshape(3, 3, c, k)


def winograd_conv(x, w, *, pads, m: int, out_hw, u=None, bias=None, workspace_bytes: int | None = None):
    """3×3 stride-1 convolution of NHWC ``x`` by HWIO ``w`` with explicit ``pads`` → ``(N, Ho, Wo, K)``.

    ``pads`` = ((top, bottom), (left, right)); ``u`` = a precomputed :func:`transform_filter`
    (then ``w`` is not read and may be None);
    ``bias`` (K,) is added.  The temporaries V and M stay within ``workspace_bytes`` (at least
    one image, or one tile row on the compiled path).  With numba the compiled transforms run
    block by block (:mod:`convnet.ops.kernels.winograd`); otherwise the Kronecker GEMMs below,
    which stay as their test oracle.
    """
    u = transform_filter(w, m) if u is None else u
    n, _, _, c = x.shape
    k = u.shape[2]
    if kernels.usable(x):
        return _conv_tiled(np.ascontiguousarray(x), u, pads=pads, m=m, out_hw=out_hw, bias=bias,
                           workspace_bytes=workspace_bytes)
    xp = get_array_module(x)
    ho, wo = out_hw
    step = _chunk_images(n, (ho, wo), c, k, m, x.itemsize, workspace_bytes)
    if step >= n:
        y = _conv_kronecker(x, u, pads=pads, m=m, out_hw=out_hw)
    else:
        y = xp.empty((n, ho, wo, k), dtype=x.dtype)
        for n0 in range(0, n, step):
            y[n0 : n0 + step] = _conv_kronecker(x[n0 : n0 + step], u, pads=pads, m=m, out_hw=out_hw)
    if bias is not None:
        y += bias
    return y


def _conv_kronecker(x, u, *, pads, m: int, out_hw):
    """The NumPy (and CuPy) forward: pad, copy the tiles out, three Kronecker/batched GEMMs."""
    xp = get_array_module(x)
    n, _, _, c = x.shape
    k = u.shape[2]
    a2 = (m + 2) ** 2
    ka, _, kb = _kronecker(m, x.dtype, xp)
    xpad, th, tw = _pad_to_tiles(x, pads, m, out_hw)
    t = n * th * tw
    v = (kb @ _tiles(xpad, m, th, tw)).reshape(a2, t, c)
    del xpad
    mm = xp.matmul(v, u)  # (α², T, K)
    del v
    y = (ka @ mm.reshape(a2, t * k)).reshape(m, m, n, th, tw, k)
    y = y.transpose(2, 3, 0, 4, 1, 5).reshape(n, th * m, tw * m, k)
    ho, wo = out_hw
    return xp.ascontiguousarray(y[:, :ho, :wo, :])


def _blocks(n: int, tiles_hw, per_tile_bytes: int, workspace_bytes: int | None):
    """``(b0, b1)`` ranges of tile rows (``n·th`` in all) of about :data:`BLOCK_TILES` tiles each,
    fewer when a block's temporaries (``per_tile_bytes`` a tile) would exceed ``workspace_bytes``."""
    th, tw = tiles_hw
    bands = n * th
    per_band = -(-BLOCK_TILES // tw)
    if workspace_bytes is not None:
        per_band = min(per_band, workspace_bytes // (per_tile_bytes * tw))
    per_band = max(1, min(bands, per_band))
    return [(b0, min(bands, b0 + per_band)) for b0 in range(0, bands, per_band)]


def _tiling(n, out_hw, c, k, m, itemsize, workspace_bytes):
    """``(tiles_hw, blocks, most)`` of the compiled path: the tile grid, the :func:`_blocks` of
    tile rows, and the tiles in the largest block (the rows of the reused V and M)."""
    tiles_hw = (-(-out_hw[0] // m), -(-out_hw[1] // m))
    blocks = _blocks(n, tiles_hw, (m + 2) ** 2 * (c + k) * itemsize, workspace_bytes)
    return tiles_hw, blocks, max(b1 - b0 for b0, b1 in blocks) * tiles_hw[1]


def _chunk_images(n, out_hw, c, k, m, itemsize, workspace_bytes) -> int:
    """Images per chunk of the Kronecker path: as many as keep V and M within ``workspace_bytes``."""
    per_image = (m + 2) ** 2 * -(-out_hw[0] // m) * -(-out_hw[1] // m) * (c + k) * itemsize
    return n if workspace_bytes is None else max(1, min(n, workspace_bytes // per_image))


def _conv_tiled(x, u, *, pads, m: int, out_hw, bias, workspace_bytes):
    """The compiled forward: per block of tile rows, transform the input tiles into ``V``, run the
    α² GEMMs into ``M`` and transform ``M`` into the output (the two buffers are reused)."""
    n, _, _, c = x.shape
    k = u.shape[2]
    ho, wo = out_hw
    a2 = (m + 2) ** 2
    at, _, bt = winograd_matrices(m)
    tiles_hw, blocks, most = _tiling(n, out_hw, c, k, m, x.itemsize, workspace_bytes)
    v = scratch.empty("winograd.v", (a2, most, c), x.dtype)
    mm = scratch.empty("winograd.m", (a2, most, k), x.dtype)
    y = np.empty((n, ho, wo, k), dtype=x.dtype)
    bias = np.zeros(k, dtype=x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    for b0, b1 in blocks:
        t = (b1 - b0) * tiles_hw[1]
        tile_kernels.transform_tiles(x, bt, step=m, pads=(pads[0][0], pads[1][0]), tiles_hw=tiles_hw, out=v,
                                     bands=(b0, b1))
        batched.matmul(v[:, :t], u, out=mm[:, :t])
        tile_kernels.untransform_tiles(mm, at, tiles_hw=tiles_hw, out=y, bias=bias, bands=(b0, b1))
    return y


def winograd_dw(x, dy, *, pads, m: int, workspace_bytes: int | None = None):
    """Weight gradient ``(3, 3, C, K)`` through the Winograd graph."""
    if kernels.usable(x, dy):
        return _dw_tiled(np.ascontiguousarray(x), np.ascontiguousarray(dy), pads=pads, m=m,
                         workspace_bytes=workspace_bytes)
    n, _, _, c = x.shape
    _, ho, wo, k = dy.shape
    step = _chunk_images(n, (ho, wo), c, k, m, x.itemsize, workspace_bytes)
    dw = None
    for n0 in range(0, n, step):
        part = _dw_kronecker(x[n0 : n0 + step], dy[n0 : n0 + step], pads=pads, m=m)
        dw = part if dw is None else dw + part
    return dw


def _dw_kronecker(x, dy, *, pads, m: int):
    xp = get_array_module(x)
    n, _, _, c = x.shape
    _, ho, wo, k = dy.shape
    a2 = (m + 2) ** 2
    ka, kg, kb = _kronecker(m, x.dtype, xp)
    xpad, th, tw = _pad_to_tiles(x, pads, m, (ho, wo))
    t = n * th * tw
    v = (kb @ _tiles(xpad, m, th, tw)).reshape(a2, t, c)
    del xpad
    dyp = xp.zeros((n, th * m, tw * m, k), dtype=dy.dtype)
    dyp[:, :ho, :wo, :] = dy
    # output tiles, tile-position-major: (m², T·K)
    dyt = dyp.reshape(n, th, m, tw, m, k).transpose(2, 4, 0, 1, 3, 5).reshape(m * m, t * k)
    dm = (ka.T @ dyt).reshape(a2, t, k)
    du = xp.matmul(v.transpose(0, 2, 1), dm)  # (α², C, K)
    return (kg.T @ du.reshape(a2, c * k)).reshape(3, 3, c, k)


def _dw_tiled(x, dy, *, pads, m: int, workspace_bytes):
    """The compiled weight gradient: per block, ``V`` of the input tiles and ``dM = A · dy-tile · Aᵀ``
    (the same transform loop with ``A``), then ``dU += Vᵀ dM`` (α² GEMMs) and ``dw = Gᵀ dU G``."""
    n, _, _, c = x.shape
    _, ho, wo, k = dy.shape
    a2 = (m + 2) ** 2
    at, _, bt = winograd_matrices(m)
    tiles_hw, blocks, most = _tiling(n, (ho, wo), c, k, m, x.itemsize, workspace_bytes)
    v = scratch.empty("winograd.v", (a2, most, c), x.dtype)
    dm = scratch.empty("winograd.m", (a2, most, k), x.dtype)
    du = scratch.empty("winograd.du", (a2, c, k), x.dtype)
    part = scratch.empty("winograd.du_part", (a2, c, k), x.dtype) if len(blocks) > 1 else du
    for b0, b1 in blocks:
        t = (b1 - b0) * tiles_hw[1]
        tile_kernels.transform_tiles(x, bt, step=m, pads=(pads[0][0], pads[1][0]), tiles_hw=tiles_hw, out=v,
                                     bands=(b0, b1))
        tile_kernels.transform_tiles(dy, at.T, step=m, pads=(0, 0), tiles_hw=tiles_hw, out=dm, bands=(b0, b1))
        if b0 == blocks[0][0]:
            batched.matmul(v[:, :t].transpose(0, 2, 1), dm[:, :t], out=du)
        else:
            batched.matmul(v[:, :t].transpose(0, 2, 1), dm[:, :t], out=part)
            du += part
    return filter_gradient(du, m)


def winograd_dx(dy, w, *, pads, m: int, in_hw, workspace_bytes: int | None = None, u=None):
    """Data gradient: the forward transform on ``dy`` with the filter rotated 180° and C/K swapped;
    ``u``: that filter's :func:`transform_filter` (``rotated=True``) made before (then ``w`` is not read)."""
    (pt, pb), (pl, pr) = pads
    back = ((2 - pt, 2 - pb), (2 - pl, 2 - pr))
    u = transform_filter(w, m, rotated=True) if u is None else u
    return winograd_conv(dy, None, pads=back, m=m, out_hw=in_hw, u=u, workspace_bytes=workspace_bytes)


def winograd_applicable(geom: Geometry2D, groups: int) -> bool:
    """3×3, stride 1, no dilation, ungrouped, and padding of at most 2 on every side."""
    return (
        geom.kernel == (3, 3) and geom.stride == (1, 1) and geom.dilation == (1, 1) and groups == 1
        and all(0 <= p <= 2 for pair in geom.pads for p in pair)
    )


def multiplies(n, out_hw, c, k, m, *, tiled=None) -> int:
    """Scalar multiplies of one :func:`winograd_conv` call: the α² GEMMs (``α²·T·C·K``, T tiles),
    the filter transform and the input and output transforms — separable on the compiled path
    (``3·α·(3 + α)`` a weight pair C·K, ``6·α·(m + α)`` a tile and input channel, ``6·m·(α + m)``
    a tile and output channel: six terms per tile sum), Kronecker GEMMs otherwise (``9·α²``,
    ``α⁴`` and ``m²·α²``)."""
    tiled = kernels.enabled() if tiled is None else tiled
    a = m + 2
    t = n * -(-out_hw[0] // m) * -(-out_hw[1] // m)
    if tiled:
        transforms = 3 * a * (3 + a) * c * k + t * (6 * a * (m + a) * c + 6 * m * (a + m) * k)
    else:
        transforms = 9 * a * a * c * k + t * (a**4 * c + m * m * a * a * k)
    return a * a * t * c * k + transforms


def filter_bytes(c, k, m, itemsize) -> int:
    """Bytes of the transformed filter ``U (α², C, K)``: a temporary of every :func:`winograd_conv`
    and :func:`winograd_dx` call that is not given one (not bounded by ``workspace_bytes``, not in
    :func:`workspace`); a layer that prepacks it keeps it between calls instead
    (:class:`convnet.ops.fast.conv.Prepacked`)."""
    return (m + 2) ** 2 * c * k * itemsize


def workspace(n, out_hw, c, k, m, itemsize, workspace_bytes=None, *, tiled=None) -> int:
    """Peak bytes of the reused temporaries of one :func:`winograd_conv` call (its output and the
    transformed filter, :func:`filter_bytes`, excluded).

    Compiled path (``tiled``, the default when numba is on): V and M of the largest block.
    Kronecker path: for the largest batch chunk, the padded input, the gathered tiles and V
    (α²·T·C each) and M (α²·T·K).
    """
    tiled = kernels.enabled() if tiled is None else tiled
    a2 = (m + 2) ** 2
    th, tw = -(-out_hw[0] // m), -(-out_hw[1] // m)
    if tiled:
        return _tiling(n, out_hw, c, k, m, itemsize, workspace_bytes)[2] * a2 * (c + k) * itemsize
    chunk = _chunk_images(n, out_hw, c, k, m, itemsize, workspace_bytes)
    padded = chunk * (th * m + 2) * (tw * m + 2) * c * itemsize
    return padded + chunk * a2 * th * tw * (2 * c + k) * itemsize


def dw_workspace(n, out_hw, c, k, m, itemsize, workspace_bytes=None, *, tiled=None) -> int:
    """Peak bytes of the temporaries of one :func:`winograd_dw` call: V and dM (a block of them,
    or a batch chunk with the padded input, the gathered tiles and the padded ``dy``) and dU."""
    tiled = kernels.enabled() if tiled is None else tiled
    a2 = (m + 2) ** 2
    du = 2 * a2 * c * k * itemsize
    if tiled:  # dU, and a second one for the later blocks' products when there are several
        blocks = _tiling(n, out_hw, c, k, m, itemsize, workspace_bytes)[1]
        du = (2 if len(blocks) > 1 else 1) * a2 * c * k * itemsize
        return workspace(n, out_hw, c, k, m, itemsize, workspace_bytes, tiled=True) + du
    th, tw = -(-out_hw[0] // m), -(-out_hw[1] // m)
    chunk = _chunk_images(n, out_hw, c, k, m, itemsize, workspace_bytes)
    return workspace(n, out_hw, c, k, m, itemsize, workspace_bytes, tiled=False) + \
        chunk * th * tw * m * m * 2 * k * itemsize + du
