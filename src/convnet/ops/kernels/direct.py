"""Direct convolution for narrow layers (few output channels), one pass over the input.

``y[n, i, j, k] = Σ_{a, b, c} xp[n, i·sh + a·dh, j·sw + b·dw, c] · w[a, b, c, k]`` over an
already padded NHWC batch; the loops are in :mod:`.direct_conv`.  The sum runs in the
order ``a, b, c`` for every output, so it differs from im2col's GEMM only in rounding.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import slp_vectorised
from .direct_conv import DW_KERNELS, KERNELS

_helper = None
_helper_pid = None


def threads() -> int:
    """Threads the direct kernels split their work over: ``CONVNET_THREADS`` if set, else 2
    (when the machine has two cores or more).  The kernels release the GIL, so the caller's
    thread does one half and a helper thread the other."""
    env = os.environ.get("CONVNET_THREADS")
    if env and env.isdigit() and int(env) >= 1:
        return min(int(env), 2)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _halves(fn, total: int, *args):
    """``fn(*args, start, stop)`` over ``0 .. total``: split in two when :func:`threads` is 2."""
    global _helper, _helper_pid
    if threads() < 2 or total < 2:
        fn(*args, 0, total)
        return
    if _helper is None or _helper_pid != os.getpid():  # a forked child has no helper thread: start one
        _helper, _helper_pid = ThreadPoolExecutor(1, thread_name_prefix="convnet-direct"), os.getpid()
    half = total // 2
    other = _helper.submit(fn, *args, half, total)
    try:
        fn(*args, 0, half)
    finally:
        other.result()


def supports(k: int) -> bool:
    """True when there is a kernel for ``k`` output channels."""
    return k in KERNELS


def conv(xpad, w, out_hw, stride, dilation):
    """``(N, Ho, Wo, K)`` from a padded NHWC batch and HWIO weights (ungrouped)."""
    xpad, w = np.ascontiguousarray(xpad), np.ascontiguousarray(w)
    n, k = xpad.shape[0], w.shape[3]
    ho, wo = out_hw
    y = np.empty((n, ho, wo, k), dtype=xpad.dtype)
    args = (xpad, w, y, stride[0], stride[1], dilation[0], dilation[1])
    with slp_vectorised():
        KERNELS[k](*args, 0, 0)  # compiles (inside the SLP block) before any thread calls it
        _halves(KERNELS[k], n * ho, *args)
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
    shape = (kernel[0], kernel[1], xpad.shape[3], k)
    parts = [np.zeros(shape, dtype=np.float64) for _ in range(threads() if n >= 2 else 1)]

    def run(part, start, stop):
        DW_KERNELS[k](xpad, dy, parts[part], stride[0], stride[1], dilation[0], dilation[1], start, stop)

    with slp_vectorised():
        run(0, 0, 0)  # compiles (inside the SLP block) before any thread calls it
        if len(parts) == 1:
            run(0, 0, n)
        else:  # one float64 accumulator per thread, images split in two
            _halves(lambda start, stop: run(0 if start == 0 else 1, start, stop), n)
    return sum(parts[1:], parts[0]).astype(dy.dtype)
