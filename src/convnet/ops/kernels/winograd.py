"""Winograd tile transforms in one pass each (the GEMMs in between stay in BLAS).

The NumPy path of :mod:`convnet.ops.fast.winograd` pads the input, copies every α×α tile out
(the tiles overlap: 2.25× the input for F(4,3)), and multiplies by the 36×36 Kronecker
matrix — four trips through memory and 36 multiply-adds per value where the separable
transform needs 12.  Here one loop reads the unpadded NHWC batch and writes the
transformed tiles ``V (α², T, C)`` directly:

* rows first: for one band of tiles (one tile row of one image), ``S[i, x, :] = Σ_r
  mat[i, r] · x[y0 + r, x, :]`` into a scratch band of α rows (in cache), zero outside
  the image — the padding is never stored;
* then columns: ``V[i·α + j, t, :] = Σ_s mat[j, s] · S[i, x0 + s, :]``.

The same loop with ``mat = A`` (α × m) and tiles of m gives the transformed output
gradient of the weight-gradient pass.  The output transform reads ``M (α², T, K)`` and
writes ``Y = Aᵀ M A`` (plus the bias) straight into the NHWC output, dropping the
tile padding at the bottom and right.  The filter transform ``U = G w Gᵀ`` is separable
too: 3·α + α² sums of three terms per weight pair (c, k) — 162 multiply-adds for F(4,3),
where the Kronecker GEMM does α²·9 = 324 and, with only nine columns, runs far below BLAS's
rate; its transpose, the weight gradient ``Gᵀ dU G`` from the gradient of U, likewise.

Every inner loop runs over channels (contiguous in NHWC) with six fixed terms — the
coefficients are padded with zeros to six and the rows clamped — so LLVM vectorises it
with one store stream.  Tile bands are split over two threads (:mod:`.parallel`).
"""
from __future__ import annotations

import numpy as np

from . import compiled
from .parallel import halves

TERMS = 6  # the largest α (F(4,3)); every transform sums exactly this many terms
#: the transforms stream strided rows through memory: a multiply-add here costs about four of the
#: direct kernels', the unit of :data:`.parallel.SPLIT_MIN_WORK`, so their work counts four times
#: (which splits F(4,3)'s transforms on small maps of a large batch too; docs/tuning.md)
MEMORY_BOUND = 4


@compiled(contract=True)
def _transform_tiles(x, mat, step, pad_top, pad_left, th, tw, out, first, start, stop):  # pragma: no cover - compiled
    """out[i·α + j, (band - first)·tw + tx, :] = Σ_{r,s} mat[i,r]·mat[j,s]·x[n, ty·step - pad_top + r,
    tx·step - pad_left + s, :] (zero outside ``x``) for the tile rows band = n·th + ty in ``start .. stop``."""
    _, h, w, c = x.shape
    alpha = mat.shape[0]
    wb = (tw - 1) * step + TERMS
    s = np.empty((alpha, wb, c), dtype=x.dtype)
    zero = np.zeros(1, dtype=x.dtype)[0]
    rows = np.empty(TERMS, dtype=np.int64)
    coef = np.empty(TERMS, dtype=x.dtype)
    for band in range(start, stop):
        n = band // th
        y0 = (band % th) * step - pad_top
        for i in range(alpha):
            for r in range(TERMS):
                yy = y0 + r
                inside = yy >= 0 and yy < h
                rows[r] = min(max(yy, 0), h - 1)
                coef[r] = mat[i, r] if inside else zero
            m0, m1, m2, m3, m4, m5 = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5]
            r0, r1, r2, r3, r4, r5 = rows[0], rows[1], rows[2], rows[3], rows[4], rows[5]
            for xc in range(wb):
                xx = xc - pad_left
                if xx < 0 or xx >= w:
                    for ch in range(c):
                        s[i, xc, ch] = zero
                else:
                    for ch in range(c):
                        s[i, xc, ch] = (m0 * x[n, r0, xx, ch] + m1 * x[n, r1, xx, ch] + m2 * x[n, r2, xx, ch]
                                        + m3 * x[n, r3, xx, ch] + m4 * x[n, r4, xx, ch] + m5 * x[n, r5, xx, ch])
        base = (band - first) * tw
        for i in range(alpha):  # one output row ξ at a time: its tiles are contiguous in ``out``
            for j in range(alpha):
                m0, m1, m2, m3, m4, m5 = mat[j, 0], mat[j, 1], mat[j, 2], mat[j, 3], mat[j, 4], mat[j, 5]
                xi = i * alpha + j
                for tx in range(tw):
                    x0 = tx * step
                    for ch in range(c):
                        out[xi, base + tx, ch] = (
                            m0 * s[i, x0, ch] + m1 * s[i, x0 + 1, ch] + m2 * s[i, x0 + 2, ch]
                            + m3 * s[i, x0 + 3, ch] + m4 * s[i, x0 + 4, ch] + m5 * s[i, x0 + 5, ch])


@compiled(contract=True)
def _untransform_tiles(mm, mat, th, tw, bias, y, first, start, stop):  # pragma: no cover - compiled
    """y[n, ty·m + p, tx·m + q, :] = bias + Σ_{i,l} mat[p,i]·mat[q,l]·mm[i·α + l, (band - first)·tw + tx, :]
    for the tile rows band = n·th + ty in ``start .. stop``; rows and columns past ``y``'s edge are dropped."""
    alpha = mm.shape[0]
    alpha = int(round(np.sqrt(alpha)))
    _, ho, wo, k = y.shape
    m = mat.shape[0]
    r = np.empty((TERMS, m, tw, k), dtype=y.dtype)
    zero = np.zeros(1, dtype=y.dtype)[0]
    idx = np.empty(TERMS, dtype=np.int64)
    for l in range(TERMS):
        idx[l] = min(l, alpha - 1)
    for i in range(alpha, TERMS):  # rows past α stay zero (their coefficients are zero too)
        for q in range(m):
            for tx in range(tw):
                for ch in range(k):
                    r[i, q, tx, ch] = zero
    l0, l1, l2, l3, l4, l5 = idx[0], idx[1], idx[2], idx[3], idx[4], idx[5]
    for band in range(start, stop):
        n = band // th
        ty = band % th
        base = (band - first) * tw
        for i in range(alpha):  # columns first, reading each row ξ of ``mm`` along the band
            b = i * alpha
            for q in range(m):
                c0, c1, c2, c3, c4, c5 = mat[q, 0], mat[q, 1], mat[q, 2], mat[q, 3], mat[q, 4], mat[q, 5]
                for tx in range(tw):
                    t = base + tx
                    for ch in range(k):
                        r[i, q, tx, ch] = (
                            c0 * mm[b + l0, t, ch] + c1 * mm[b + l1, t, ch] + c2 * mm[b + l2, t, ch]
                            + c3 * mm[b + l3, t, ch] + c4 * mm[b + l4, t, ch] + c5 * mm[b + l5, t, ch])
        for p in range(m):
            yy = ty * m + p
            if yy >= ho:
                break
            d0, d1, d2, d3, d4, d5 = mat[p, 0], mat[p, 1], mat[p, 2], mat[p, 3], mat[p, 4], mat[p, 5]
            for tx in range(tw):
                for q in range(m):
                    xx = tx * m + q
                    if xx >= wo:
                        break
                    for ch in range(k):
                        y[n, yy, xx, ch] = bias[ch] + (
                            d0 * r[0, q, tx, ch] + d1 * r[1, q, tx, ch] + d2 * r[2, q, tx, ch]
                            + d3 * r[3, q, tx, ch] + d4 * r[4, q, tx, ch] + d5 * r[5, q, tx, ch])


@compiled(contract=True)
def _transform_filter(w, g, u, start, stop):  # pragma: no cover - compiled
    """u[ξ·α + ν, c, :] = Σ_{a,b} g[ξ,a]·g[ν,b]·w[a, b, c, :] for the input channels c in ``start .. stop``
    (rows of the kernel first, into a scratch of 3·α rows of K; then its columns)."""
    alpha = g.shape[0]
    k = w.shape[3]
    s = np.empty((3, alpha, k), dtype=w.dtype)
    for c in range(start, stop):
        for a in range(3):
            for nu in range(alpha):
                g0, g1, g2 = g[nu, 0], g[nu, 1], g[nu, 2]
                for ch in range(k):
                    s[a, nu, ch] = g0 * w[a, 0, c, ch] + g1 * w[a, 1, c, ch] + g2 * w[a, 2, c, ch]
        for xi in range(alpha):
            g0, g1, g2 = g[xi, 0], g[xi, 1], g[xi, 2]
            for nu in range(alpha):
                o = xi * alpha + nu
                for ch in range(k):
                    u[o, c, ch] = g0 * s[0, nu, ch] + g1 * s[1, nu, ch] + g2 * s[2, nu, ch]


@compiled(contract=True)
def _filter_gradient(du, gt, dw, start, stop):  # pragma: no cover - compiled
    """dw[a, b, c, :] = Σ_{ξ,ν} gt[a,ξ]·gt[b,ν]·du[ξ·α + ν, c, :] for the input channels c in ``start .. stop``
    (the transpose of :func:`_transform_filter`: the columns first, into a scratch of α·3 rows of K).
    ``gt`` is Gᵀ padded with zero columns to six terms a sum (rows of ``du`` past α are clamped)."""
    alpha = int(round(np.sqrt(du.shape[0])))
    k = du.shape[2]
    s = np.zeros((TERMS, 3, k), dtype=du.dtype)  # rows past α stay zero (their coefficients are zero too)
    idx = np.empty(TERMS, dtype=np.int64)
    for l in range(TERMS):
        idx[l] = min(l, alpha - 1)
    l0, l1, l2, l3, l4, l5 = idx[0], idx[1], idx[2], idx[3], idx[4], idx[5]
    for c in range(start, stop):
        for xi in range(alpha):
            o = xi * alpha
            for b in range(3):
                c0, c1, c2, c3, c4, c5 = gt[b, 0], gt[b, 1], gt[b, 2], gt[b, 3], gt[b, 4], gt[b, 5]
                for ch in range(k):
                    s[xi, b, ch] = (c0 * du[o + l0, c, ch] + c1 * du[o + l1, c, ch] + c2 * du[o + l2, c, ch]
                                    + c3 * du[o + l3, c, ch] + c4 * du[o + l4, c, ch] + c5 * du[o + l5, c, ch])
        for a in range(3):
            d0, d1, d2, d3, d4, d5 = gt[a, 0], gt[a, 1], gt[a, 2], gt[a, 3], gt[a, 4], gt[a, 5]
            for b in range(3):
                for ch in range(k):
                    dw[a, b, c, ch] = (d0 * s[0, b, ch] + d1 * s[1, b, ch] + d2 * s[2, b, ch]
                                       + d3 * s[3, b, ch] + d4 * s[4, b, ch] + d5 * s[5, b, ch])


def _padded(mat, dtype):
    """``mat`` with its columns padded by zeros to :data:`TERMS`, in ``dtype``."""
    out = np.zeros((mat.shape[0], TERMS), dtype=dtype)
    out[:, : mat.shape[1]] = mat
    return out


def transform_tiles(x, mat, *, step: int, pads, tiles_hw, out, bands):
    """Write the α×α transforms ``mat · tile · matᵀ`` of the tiles of NHWC ``x`` in the tile rows
    ``bands = (b0, b1)`` (row ``n·th + ty``) into ``out[:, :(b1 - b0)·tw]`` (``out``: (α², ≥ that, C)).

    ``mat`` is α × β (β ≤ 6: Bᵀ for input tiles of α, or A for output-gradient tiles of m);
    tile (ty, tx) starts at row ``ty·step - pads[0]``, column ``tx·step - pads[1]`` of ``x``.
    """
    th, tw = tiles_hw
    b0, b1 = bands
    alpha = mat.shape[0]
    work = MEMORY_BOUND * 12 * alpha * alpha * (b1 - b0) * tw * x.shape[3]  # six terms a sum, rows then columns
    halves(_transform_tiles, b1 - b0, x, _padded(mat, x.dtype), step, pads[0], pads[1], th, tw, out, b0, offset=b0,
           work=work)


def untransform_tiles(mm, mat, *, tiles_hw, out, bias, bands):
    """Write ``mat · M · matᵀ`` (``mat`` = Aᵀ, m × α) plus ``bias`` (K,) for the tiles of the tile rows
    ``bands = (b0, b1)``, read from ``mm[:, :(b1 - b0)·tw]`` (``mm``: (α², ≥ that, K)), into NHWC ``out``."""
    th, tw = tiles_hw
    b0, b1 = bands
    work = MEMORY_BOUND * 12 * mm.shape[0] * (b1 - b0) * tw * mm.shape[2]
    halves(_untransform_tiles, b1 - b0, mm, _padded(mat, mm.dtype), th, tw, bias, out, b0, offset=b0, work=work)


def transform_filter(w, g, *, out):
    """Write ``G w[:, :, c, :] Gᵀ`` for every input channel of HWIO ``w (3, 3, C, K)`` into
    ``out (α², C, K)`` (``g``: G, α × 3, in ``w``'s dtype); input channels split over two threads."""
    c, k = w.shape[2], w.shape[3]
    alpha = g.shape[0]
    halves(_transform_filter, c, w, g, out, work=MEMORY_BOUND * 3 * alpha * (3 + alpha) * c * k)


def filter_gradient(du, g, *, out):
    """Write ``Gᵀ dU[:, c, :] G`` for every input channel of ``du (α², C, K)`` into HWIO ``out (3, 3, C, K)``:
    the weight gradient from the gradient of the transformed filter (the transpose of :func:`transform_filter`)."""
    c, k = du.shape[1], du.shape[2]
    alpha = g.shape[0]
    work = MEMORY_BOUND * 6 * (3 * alpha + 9) * c * k  # α·3 then 3·3 sums of six terms
    halves(_filter_gradient, c, du, _padded(g.T, du.dtype), out, work=work)
