"""Max pooling: each window read once, its running maximum kept in a register.

Max pooling in NumPy is ``F_h·F_w`` passes of ``np.maximum`` over strided views of the
input — each pass streams the whole output through memory.  These kernels read each
window once and write the output (and the switch) once.  They compute exactly what
:mod:`convnet.ops.pool` documents (first maximum wins ties, NaN wins a window).
"""
from __future__ import annotations

import numpy as np

from . import compiled


@compiled
def _max_pool_plain(x, kh, kw, sh, sw, pt, pl, y):  # pragma: no cover - compiled
    # channels innermost (contiguous, vectorised); positions outside x are the -inf padding
    n, h, w, c = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for t in range(n * ho):
        b = t // ho
        i = t - b * ho
        for j in range(wo):
            for ch in range(c):
                y[b, i, j, ch] = -np.inf
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
                        cur = y[b, i, j, ch]
                        y[b, i, j, ch] = v if (v > cur or v != v) else cur

@compiled
def _max_pool_switch(x, kh, kw, sh, sw, pt, pl, y, switches):  # pragma: no cover - compiled
    n, h, w, c = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for t in range(n * ho):
        b = t // ho
        i = t - b * ho
        best = np.empty(c, dtype=x.dtype)  # a row of running maxima and their offsets, in
        kbest = np.empty(c, dtype=np.int32)  # registers' reach: the select loop vectorises
        for j in range(wo):
            best[:] = -np.inf
            kbest[:] = 0
            for a in range(kh):
                r = i * sh - pt + a
                if r < 0 or r >= h:
                    continue
                for bb in range(kw):
                    q = j * sw - pl + bb
                    if q < 0 or q >= w:
                        continue
                    k = a * kw + bb
                    for ch in range(c):
                        v = x[b, r, q, ch]
                        cur = best[ch]
                        upd = v > cur or (v != v and cur == cur)  # first maximum; first NaN
                        best[ch] = v if upd else cur
                        kbest[ch] = k if upd else kbest[ch]
            for ch in range(c):
                y[b, i, j, ch] = best[ch]
                switches[b, i, j, ch] = kbest[ch]

@compiled
def _max_pool_backward(dy, switches, kw, sh, sw, pt, pl, dx):  # pragma: no cover - compiled
    # adds, so overlapping windows (3×3/2) accumulate into the positions they share
    n, ho, wo, c = dy.shape
    h, w = dx.shape[1], dx.shape[2]
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                for ch in range(c):
                    k = switches[b, i, j, ch]
                    r = i * sh - pt + k // kw
                    q = j * sw - pl + k % kw
                    if 0 <= r < h and 0 <= q < w:
                        dx[b, r, q, ch] += dy[b, i, j, ch]


def max_pool_forward(x, kernel, stride, pads_before, out_hw, want_switches: bool):
    """``(y, switches)`` of max pooling over an unpadded NHWC batch (switches None if not wanted).

    ``pads_before`` = (top, left): window ``(i, j)`` starts at ``(i·sh - top, j·sw - left)``;
    positions outside the input are the -inf padding (and rows added by ``fit="pad"``).
    """
    x = np.ascontiguousarray(x)
    n, _, _, c = x.shape
    y = np.empty((n, *out_hw, c), dtype=x.dtype)
    args = (x, kernel[0], kernel[1], stride[0], stride[1], pads_before[0], pads_before[1], y)
    if not want_switches:
        _max_pool_plain(*args)
        return y, None
    switches = np.empty(y.shape, dtype=np.uint8)
    _max_pool_switch(*args, switches)
    return y, switches


def max_pool_backward(dy, switches, kernel, stride, pads_before, x_shape):
    """The input gradient ``(N, H, W, C)``: each ``dy`` added where its switch points."""
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _max_pool_backward(np.ascontiguousarray(dy), switches, kernel[1], stride[0], stride[1], pads_before[0],
                       pads_before[1], dx)
    return dx
