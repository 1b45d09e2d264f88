"""col2im as a gather: each input position sums the column entries that read it.

NumPy's col2im is ``kh·kw`` strided slice additions over the whole input; with few
channels each slice is a run of C floats and the additions crawl.  Here every position of ``dx`` is visited
once, its contributing ``(window, offset)`` pairs found by arithmetic, and their channel
rows added in a vectorised loop.

:func:`spread_strided` is the strided 1×1 case: every input pixel read by one output or none.
:func:`planes_add` is the same sum for tap-major column gradients into channel planes
``(C, N, H, W)`` (``dx`` of an RGB or grey input, :func:`convnet.ops.fast.columns.dx_by_planes`):
each plane row gathers the output rows that read it, one tap's row at a time.
"""
from __future__ import annotations

import numpy as np

from . import compiled, parallel


@compiled
def _col2im_add(dcols, h0, sh, sw, dh, dw, pt, pl, dx):  # pragma: no cover - compiled
    # dcols (nb, hb, Wo, kh, kw, C): output rows h0 .. h0+hb of the images in dx (nb, H, W, C)
    nb, hb, wo, kh, kw, c = dcols.shape
    h, w = dx.shape[1], dx.shape[2]
    r_lo = max(0, h0 * sh - pt)
    r_hi = min(h, (h0 + hb - 1) * sh - pt + (kh - 1) * dh + 1)
    rows = max(0, r_hi - r_lo)
    for t in range(nb * rows):
        b = t // rows
        r = r_lo + t - b * rows
        for a in range(kh):
            num = r + pt - a * dh
            if num < 0 or num % sh != 0:
                continue
            i = num // sh - h0
            if i < 0 or i >= hb:
                continue
            for q in range(w):
                if dw == 1:
                    # the taps that reach q: bb ≡ q + pl (mod sw), each sw further one output
                    # column to the left — one division per position instead of two per tap
                    m = q + pl
                    bb = m % sw
                    j = (m - bb) // sw
                    while bb < kw and bb <= m:
                        if j < wo:
                            for ch in range(c):
                                dx[b, r, q, ch] += dcols[b, i, j, a, bb, ch]
                        bb += sw
                        j -= 1
                    continue
                for bb in range(kw):
                    numq = q + pl - bb * dw
                    if numq < 0 or numq % sw != 0:
                        continue
                    j = numq // sw
                    if j >= wo:
                        continue
                    for ch in range(c):
                        dx[b, r, q, ch] += dcols[b, i, j, a, bb, ch]


def col2im_add(dcols, h0, geom, dx):
    """Add the columns ``dcols (nb, hb, Wo, kh, kw, C)`` of output rows ``h0 .. h0+hb`` into the
    unpadded input gradient ``dx (nb, H, W, C)`` (C-contiguous), skipping the padding."""
    (pt, _), (pl, _) = geom.pads
    # one thread: it runs right after the column-gradient GEMM, while OpenBLAS's workers still
    # spin, so a second thread (rows of dx, no shared writes) has no free core
    _col2im_add(np.ascontiguousarray(dcols), h0, geom.stride[0], geom.stride[1], geom.dilation[0],
                geom.dilation[1], pt, pl, dx)


@compiled
def _planes_add(g, sh, sw, dh, dw, pt, pl, planes, t0, t1):  # pragma: no cover - compiled
    # g (kh, kw, C, nb, Ho, Wo) tap-major column gradients; planes (C, nb, H, W), rows t0 .. t1 - 1
    kh, kw, c, nb, ho, wo = g.shape
    h, w = planes.shape[2], planes.shape[3]
    for t in range(t0, t1):
        ch = t // (nb * h)
        n = (t // h) % nb
        y = t % h
        row = planes[ch, n, y]
        row[:] = 0
        for a in range(kh):
            num = y + pt - a * dh
            if num < 0 or num % sh != 0 or num // sh >= ho:
                continue
            i = num // sh
            for b in range(kw):
                x0 = b * dw - pl  # output column j reads x0 + j·sw
                j_lo = max(0, (-x0 + sw - 1) // sw)
                j_hi = min(wo, (w - 1 - x0) // sw + 1)
                src = g[a, b, ch, n, i]
                for j in range(j_lo, j_hi):
                    row[x0 + j * sw] += src[j]


def planes_add(g, geom, planes):
    """Fill the channel planes ``planes (C, nb, H, W)`` (any contents: every value is written) with
    the sums of the tap-major column gradients ``g (kh, kw, C, nb, Ho, Wo)`` that read each
    position, skipping the padding; rows split over two threads when large."""
    (pt, _), (pl, _) = geom.pads
    c, nb, h, _ = planes.shape
    parallel.halves_if_large(_planes_add, c * nb * h, g.size, np.ascontiguousarray(g), geom.stride[0],
                             geom.stride[1], geom.dilation[0], geom.dilation[1], pt, pl, planes)


@compiled
def _spread_strided(g, sh, sw, dx, t0, t1):  # pragma: no cover - compiled
    # g (N, Ho, Wo, C): the gradients of the pixels read; dx (N, H, W, C) rows t0 .. t1 - 1 of N·H
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    ho, wo = g.shape[1], g.shape[2]
    zero = np.zeros(1, dtype=dx.dtype)[0]
    for t in range(t0, t1):
        n = t // h
        y = t - n * h
        row = dx[n, y].reshape(-1)
        i = y // sh
        if y != i * sh or i >= ho:
            row[:] = zero
            continue
        src = g[n, i].reshape(-1)
        for x in range(w):
            j = x // sw
            if x == j * sw and j < wo:
                for ch in range(c):
                    row[x * c + ch] = src[j * c + ch]
            else:
                for ch in range(c):
                    row[x * c + ch] = zero


def spread_strided(g, stride, dx):
    """Write ``dx (N, H, W, C)`` whole: ``g (N, Ho, Wo, C)`` at the pixels an unpadded strided 1×1
    convolution reads (rows and columns ``0, s, 2s, ...``), zeros elsewhere — one pass instead of
    zeroing ``dx`` and a strided copy; rows split over two threads when large."""
    n, h = dx.shape[0], dx.shape[1]
    parallel.halves_if_large(_spread_strided, n * h, dx.size, np.ascontiguousarray(g), stride[0], stride[1], dx)
