"""Max pooling: each window read once, its running maximum kept in a register.

Max pooling in NumPy is ``F_h·F_w`` passes of ``np.maximum`` over strided views of the
input — each pass streams the whole output through memory.  These kernels read each
window once and write the output (and the switch) once.  They compute exactly what
:mod:`convnet.ops.pool` documents (first maximum wins ties, NaN wins a window).
"""
from __future__ import annotations

import numpy as np

from . import compiled, parallel

# What keeps these loops vectorised (each several times faster than the plain form):
# * A running maximum updated in place (``y[ch] = v if v > y[ch] else y[ch]``) becomes a
#   masked store (``vmaskmovps``), which is microcoded and slow on AMD Zen.  The loops
#   read one buffer and write the other, swapping them per window position.
# * Conditions are bitwise (``|``, ``&``): ``or``/``and`` short-circuit into branches.
# * Switch offsets are compared as uint8 in the backward, but kept as int32 while they are
#   selected alongside float32 values (mixed widths stopped the vectoriser).
# * Indices that change inside the channel loop are the loop counter itself: numba's
#   negative-index wrap-around check on a computed index blocks vectorisation.


@compiled
def _max_pool_plain(x, kh, kw, sh, sw, pt, pl, y, t0, t1):  # pragma: no cover - compiled
    # positions outside x are the -inf padding
    n, h, w, c = x.shape
    ho, wo = y.shape[1], y.shape[2]
    bufs = np.empty((2, c), dtype=x.dtype)
    for t in range(t0, t1):
        b = t // ho
        i = t - b * ho
        for j in range(wo):
            src, dst = bufs[0], bufs[1]
            for ch in range(c):
                src[ch] = -np.inf
            for a in range(kh):
                r = i * sh - pt + a
                if r < 0 or r >= h:
                    continue
                for bb in range(kw):
                    q = j * sw - pl + bb
                    if q < 0 or q >= w:
                        continue
                    for ch in range(c):
                        v = x[b, r, q, ch]
                        cur = src[ch]
                        dst[ch] = v if (v > cur) | (v != v) else cur
                    src, dst = dst, src
            for ch in range(c):
                y[b, i, j, ch] = src[ch]


@compiled
def _max_pool_switch(x, kh, kw, sh, sw, pt, pl, y, switches, t0, t1):  # pragma: no cover - compiled
    n, h, w, c = x.shape
    ho, wo = y.shape[1], y.shape[2]
    vbufs = np.empty((2, c), dtype=x.dtype)
    kbufs = np.empty((2, c), dtype=np.int32)
    for t in range(t0, t1):
        b = t // ho
        i = t - b * ho
        for j in range(wo):
            vs, vd, ks, kd = vbufs[0], vbufs[1], kbufs[0], kbufs[1]
            for ch in range(c):
                vs[ch] = -np.inf
                ks[ch] = 0
            for a in range(kh):
                r = i * sh - pt + a
                if r < 0 or r >= h:
                    continue
                for bb in range(kw):
                    q = j * sw - pl + bb
                    if q < 0 or q >= w:
                        continue
                    k = np.int32(a * kw + bb)
                    for ch in range(c):
                        v = x[b, r, q, ch]
                        cur = vs[ch]
                        upd = (v > cur) | ((v != v) & (cur == cur))  # first maximum; first NaN
                        vd[ch] = v if upd else cur
                        kd[ch] = k if upd else ks[ch]
                    vs, vd = vd, vs
                    ks, kd = kd, ks
            for ch in range(c):
                y[b, i, j, ch] = vs[ch]
                switches[b, i, j, ch] = ks[ch]


@compiled
def _max_pool_backward(dy, switches, kh, kw, sh, sw, pt, pl, dx, t0, t1):  # pragma: no cover - compiled
    # a gather: each input position sums dy over the windows that hold it and chose it
    # (at most ⌈kh/sh⌉·⌈kw/sw⌉ windows: one for 2×2/2, four for 3×3/2)
    n, ho, wo, c = dy.shape
    h, w = dx.shape[1], dx.shape[2]
    zero = np.zeros(1, dtype=dx.dtype)[0]
    for t in range(t0, t1):
        b = t // h
        r = t - b * h
        i_lo = max(0, -((kh - 1 - r - pt) // sh))  # ⌈(r + pt - kh + 1) / sh⌉
        i_hi = min(ho - 1, (r + pt) // sh)
        for q in range(w):
            for ch in range(c):
                dx[b, r, q, ch] = zero
            j_lo = max(0, -((kw - 1 - q - pl) // sw))
            j_hi = min(wo - 1, (q + pl) // sw)
            for i in range(i_lo, i_hi + 1):
                a = r + pt - i * sh
                for j in range(j_lo, j_hi + 1):
                    k = np.uint8(a * kw + (q + pl - j * sw))
                    for ch in range(c):
                        g = dy[b, i, j, ch]
                        s = switches[b, i, j, ch]
                        dx[b, r, q, ch] += g if s == k else zero


def max_pool_forward(x, kernel, stride, pads_before, out_hw, want_switches: bool):
    """``(y, switches)`` of max pooling over an unpadded NHWC batch (switches None if not wanted).

    ``pads_before`` = (top, left): window ``(i, j)`` starts at ``(i·sh - top, j·sw - left)``;
    positions outside the input are the -inf padding (and rows added by ``fit="pad"``).
    """
    x = np.ascontiguousarray(x)
    n, _, _, c = x.shape
    y = np.empty((n, *out_hw, c), dtype=x.dtype)
    args = (x, kernel[0], kernel[1], stride[0], stride[1], pads_before[0], pads_before[1], y)
    rows, size = n * out_hw[0], x.size + y.size
    if not want_switches:
        parallel.halves_if_large(_max_pool_plain, rows, size, *args)
        return y, None
    switches = np.empty(y.shape, dtype=np.uint8)
    parallel.halves_if_large(_max_pool_switch, rows, size, *args, switches)
    return y, switches


def max_pool_backward(dy, switches, kernel, stride, pads_before, x_shape):
    """The input gradient ``(N, H, W, C)``: each ``dy`` added where its switch points."""
    dx = np.empty(x_shape, dtype=dy.dtype)
    parallel.halves_if_large(_max_pool_backward, x_shape[0] * x_shape[1], dx.size + dy.size,
                             np.ascontiguousarray(dy), np.ascontiguousarray(switches), kernel[0], kernel[1],
                             stride[0], stride[1], pads_before[0], pads_before[1], dx)
    return dx
