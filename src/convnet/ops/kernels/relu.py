"""ReLU forward and backward, one pass each.

``np.maximum(x, 0)`` is several times slower than this loop on NHWC activations, and
``dy * (y > 0)`` makes a bool temporary and a second pass.  NaN passes through the
forward (as in ``np.maximum``); the backward routes ``dy`` where ``y > 0`` and writes 0
elsewhere, whatever ``dy`` holds there (as PyTorch's ``threshold_backward``).  Every kernel
adds ``+ 0`` to the value it stores (see :func:`_relu_inplace`), so the in-place and the
out-of-place kernels give the same bits, signed zeros included (-0.0 becomes +0.0, as
``np.maximum(-0.0, 0)`` gives).
"""
from __future__ import annotations

import numpy as np

from . import compiled, parallel

@compiled
def _relu(x, y, i0, i1):  # pragma: no cover - compiled
    zero = np.zeros(1, dtype=y.dtype)[0]
    x, y = x[i0:i1], y[i0:i1]  # (a loop from i0 would keep numba's negative-index check: scalar code)
    for i in range(x.size):
        v = x[i]
        y[i] = (zero if v < zero else v) + zero


@compiled
def _relu_inplace(x, i0, i1):  # pragma: no cover - compiled
    x = x[i0:i1]
    # "+ zero": written as a plain select, LLVM sees that x[i] keeps its value unless v < 0 and
    # stores only the zeros, with an AVX masked store, which is microcoded and slow on AMD Zen.
    # The sum makes every store unconditional; it also turns -0.0 into +0.0 (NaN stays NaN).
    zero = np.zeros(1, dtype=x.dtype)[0]
    for i in range(x.size):
        v = x[i]
        x[i] = (zero if v < zero else v) + zero


@compiled
def _relu_backward(dy, y, dx, i0, i1):  # pragma: no cover - compiled
    dy, y, dx = dy[i0:i1], y[i0:i1], dx[i0:i1]
    # both loads unconditional: a load under the condition becomes a masked load
    zero = np.zeros(1, dtype=dx.dtype)[0]
    for i in range(dy.size):
        g = dy[i]
        dx[i] = (g if y[i] > zero else zero) + zero


@compiled
def _relu_backward_inplace(dy, y, i0, i1):  # pragma: no cover - compiled
    dy, y = dy[i0:i1], y[i0:i1]
    # "+ zero" keeps every store unconditional (see _relu_inplace)
    zero = np.zeros(1, dtype=dy.dtype)[0]
    for i in range(dy.size):
        g = dy[i]
        dy[i] = (g if y[i] > zero else zero) + zero


def relu(x, *, inplace: bool = False):
    """``max(0, x)``: a new array, or written into ``x`` itself (``inplace``; through a
    contiguous copy when ``x`` is not contiguous)."""
    if inplace and x.flags.c_contiguous and x.flags.writeable:
        parallel.halves_if_large(_relu_inplace, x.size, x.size, x.reshape(-1))
        return x
    src = np.ascontiguousarray(x)
    y = np.empty_like(src)
    parallel.halves_if_large(_relu, src.size, src.size, src.reshape(-1), y.reshape(-1))
    if inplace:
        x[...] = y
        return x
    return y


def relu_backward(dy, y, *, inplace: bool = False):
    """``dy`` where ``y > 0``, else 0: a new array, or written into ``dy`` (``inplace``; through
    a contiguous copy when ``dy`` is not contiguous)."""
    y = np.ascontiguousarray(y)
    if inplace and dy.flags.c_contiguous and dy.flags.writeable:
        parallel.halves_if_large(_relu_backward_inplace, dy.size, dy.size, dy.reshape(-1), y.reshape(-1))
        return dy
    src = np.ascontiguousarray(dy)
    dx = np.empty_like(src)
    parallel.halves_if_large(_relu_backward, src.size, src.size, src.reshape(-1), y.reshape(-1), dx.reshape(-1))
    if inplace:
        dy[...] = dx
        return dy
    return dx
