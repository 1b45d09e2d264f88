"""Direct convolution for narrow layers (few output channels), one pass over the input.

``y[n, i, j, k] = Σ_{a, b, c} xp[n, i·sh + a·dh, j·sw + b·dw, c] · w[a, b, c, k]`` over an
already padded NHWC batch; the loops are in :mod:`.direct_conv`.  The sum runs in the
order ``a, b, c`` for every output, so it differs from im2col's GEMM only in rounding.
"""
from __future__ import annotations

import numpy as np

from . import slp_vectorised
from .direct_conv import KERNELS


def supports(k: int) -> bool:
    """True when there is a kernel for ``k`` output channels."""
    return k in KERNELS


def conv(xpad, w, out_hw, stride, dilation):
    """``(N, Ho, Wo, K)`` from a padded NHWC batch and HWIO weights (ungrouped)."""
    xpad, w = np.ascontiguousarray(xpad), np.ascontiguousarray(w)
    n, k = xpad.shape[0], w.shape[3]
    ho, wo = out_hw
    y = np.empty((n, ho, wo, k), dtype=xpad.dtype)
    with slp_vectorised():
        KERNELS[k](xpad, w, y, stride[0], stride[1], dilation[0], dilation[1], 0, n * ho)
    return y
