"""Direct convolution for narrow layers (few output channels), one pass over the input.

``y[n, i, j, k] = Σ_{a, b, c} xp[n, i·sh + a·dh, j·sw + b·dw, c] · w[a, b, c, k]`` over an
already padded NHWC batch; the loops are in :mod:`.direct_conv`.  The sum runs in the
order ``a, b, c`` for every output, so it differs from im2col's GEMM only in rounding.
"""
from __future__ import annotations

import numpy as np

from . import slp_vectorised
from .direct_conv import DW_KERNELS, KERNELS


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


def supports_weight_grad(k: int) -> bool:
    """True when there is a weight-gradient kernel for ``k`` output channels."""
    return k in DW_KERNELS


def weight_grad(xpad, dy, kernel, stride, dilation):
    """``dw (kh, kw, C, K)`` of the convolution that read the padded batch ``xpad``, from ``dy``.

    Sums run in float32 over one image's pixels and in float64 across images.
    """
    xpad, dy = np.ascontiguousarray(xpad), np.ascontiguousarray(dy)
    n, k = dy.shape[0], dy.shape[3]
    dw = np.zeros((kernel[0], kernel[1], xpad.shape[3], k), dtype=np.float64)
    with slp_vectorised():
        DW_KERNELS[k](xpad, dy, dw, stride[0], stride[1], dilation[0], dilation[1], 0, n)
    return dw.astype(dy.dtype)
