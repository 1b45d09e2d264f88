"""Direct convolution for narrow layers (few output channels), one pass over the input.

``y[n, i, j, k] = Σ_{a, b, c} x[n, i·sh + a·dh - pt, j·sw + b·dw - pl, c] · w[a, b, c, k]`` over
the taps inside the image (zero padding without a padded copy); the loops are in
:mod:`._generated.direct_conv_avx2` or ``direct_conv_avx512``, the one of the vector
instruction set this CPU has (:func:`convnet.ops.kernels.vector_isa`), imported on first use.
The sum runs in the order ``a, b, c`` for every output (``a, c, b`` in the blocks that load each
input once for a 3-wide kernel's three taps, :data:`.direct_blocks.REUSE_MAX_K`), so it differs
from im2col's GEMM only in rounding.
"""
from __future__ import annotations

import importlib
from typing import NamedTuple

import numpy as np

from . import parallel, slp_vectorised, vector_isa
from .direct_blocks import BLOCKS, DW_BLOCKS
from .parallel import halves as _halves


def loops(isa: str | None = None):
    """The generated module of ``isa`` (default: this CPU's, :func:`vector_isa`)."""
    return importlib.import_module(f"{__package__}._generated.direct_conv_{isa or vector_isa()}")


def kernels_here() -> tuple:
    """The output-channel counts with a kernel in this CPU's table (:func:`vector_isa`)."""
    return tuple(BLOCKS[vector_isa()])


def supports(k: int) -> bool:
    """True when this CPU's table has a kernel for ``k`` output channels."""
    return k in kernels_here()


def conv(x, w, out_hw, stride, dilation, pads, bias=None):
    """``(N, Ho, Wo, K)`` from an NHWC batch and HWIO weights (ungrouped), zero-padded by
    ``pads = (top, left)`` (the bottom and right padding follow from ``out_hw``) — without a
    padded copy: the loops skip the taps that fall outside the image.  ``bias`` (K,) starts
    each sum (no separate ``y += b`` pass over the output)."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    n, k = x.shape[0], w.shape[3]
    ho, wo = out_hw
    y = np.empty((n, ho, wo, k), dtype=x.dtype)
    bias = np.zeros(k, dtype=x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    args = (x, w, bias, y, stride[0], stride[1], dilation[0], dilation[1], pads[0], pads[1], (ho, wo, 1, 1, 0, 0))
    with slp_vectorised():
        loop = loops().KERNELS[k]
        loop(*args, 0, 0)  # compiles (inside the SLP block) before any thread calls it
        _halves(loop, n * ho, *args, work=n * ho * wo * w.shape[0] * w.shape[1] * w.shape[2] * k)
    return y


class PhaseTaps(NamedTuple):
    """One phase of an axis of a strided convolution's input: the inputs ``phase + stride·u``."""

    taps: tuple  # the kernel taps that read them, in increasing order
    lead: int  # input ``phase + stride·u`` is read by tap ``taps[t]`` of output ``u + lead - t``
    count: int  # how many inputs the phase has


def phase_taps(kernel: int, stride: int, pad: int, size: int, phase: int) -> PhaseTaps:
    """The :class:`PhaseTaps` of inputs ``phase, phase + stride, ...`` (of ``size``) of an axis
    read with ``kernel`` taps, ``stride`` and ``pad`` zeros before: output ``i`` reads input
    ``stride·i + a - pad`` with tap ``a``, so the taps that reach the phase are those with
    ``a ≡ phase + pad (mod stride)``."""
    first = (phase + pad) % stride
    return PhaseTaps(tuple(range(first, kernel, stride)), (phase + pad - first) // stride,
                     len(range(phase, size, stride)))


def supports_data_grad_by_phases(c: int, kernel, stride, dilation, groups: int) -> bool:
    """True when :func:`data_grad_by_phases` runs the layer: strided, undilated, ungrouped, every
    phase read by some tap (kernel ≥ stride on both axes), a kernel for its ``c`` input channels."""
    return (tuple(stride) != (1, 1) and tuple(dilation) == (1, 1) and groups == 1 and supports(c)
            and kernel[0] >= stride[0] and kernel[1] >= stride[1])


def data_grad_by_phases(dy, w, x_shape, stride, pads):
    """``dx`` of a strided convolution (:func:`supports_data_grad_by_phases`) that read an
    ``x_shape`` input zero-padded by ``pads = (top, left)``, from ``dy``.

    The rows and columns of ``dx`` fall into ``sh·sw`` phases (row ``h`` is in phase ``h mod sh``);
    each phase is reached by its own taps only (:func:`phase_taps`), so its gradient is a
    stride-1 convolution of ``dy`` with those taps, flipped, C and K swapped — run by the forward
    kernel for C output channels, which writes it onto the phase's rows and columns of ``dx``
    (no col2im, no scatter, no zero fill: every value of ``dx`` is written once)."""
    dy, w = np.ascontiguousarray(dy), np.ascontiguousarray(w)
    n, h, wd, c = x_shape
    (kh, kw), (sh, sw) = w.shape[:2], stride
    dx = np.empty(x_shape, dtype=dy.dtype)
    zero = np.zeros(c, dtype=dy.dtype)
    jobs = []
    for ph in range(sh):
        rows = phase_taps(kh, sh, pads[0], h, ph)
        for pw in range(sw):
            cols = phase_taps(kw, sw, pads[1], wd, pw)
            if rows.count and cols.count:
                w_phase = np.ascontiguousarray(w[list(rows.taps[::-1])][:, list(cols.taps[::-1])].transpose(0, 1, 3, 2))
                pad_phase = (len(rows.taps) - 1 - rows.lead, len(cols.taps) - 1 - cols.lead)
                jobs.append((w_phase, pad_phase, (rows.count, cols.count, sh, sw, ph, pw)))
    loop = loops().KERNELS[c]

    def run(n0, n1):
        for w_phase, (pt, pl), out in jobs:
            loop(dy, w_phase, zero, dx, 1, 1, 1, 1, pt, pl, out, n0 * out[0], n1 * out[0])

    with slp_vectorised():
        run(0, 0)  # compiles (inside the SLP block) before any thread calls it
        _halves(run, n, work=dy.size * kh * kw * c)  # = N·H·W·(kh·kw / sh·sw)·C·K, the phases' sum
    return dx


def supports_weight_grad(k: int) -> bool:
    """True when there is a weight-gradient kernel for ``k`` output channels."""
    return k in DW_BLOCKS[vector_isa()]


def weight_grad(x, dy, kernel, stride, dilation, pads):
    """``dw (kh, kw, C, K)`` of the convolution that read ``x`` zero-padded by ``pads = (top, left)``,
    from ``dy``.  Sums run in float32 over one image's pixels and in float64 across images.
    """
    x, dy = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    n, k = dy.shape[0], dy.shape[3]
    shape = (kernel[0], kernel[1], x.shape[3], k)
    work = dy.size * kernel[0] * kernel[1] * x.shape[3]
    parts = [np.zeros(shape, dtype=np.float64) for _ in range(2 if parallel.splits(n, work) else 1)]

    loop = loops().DW_KERNELS[k]

    def run(part, start, stop):
        loop(x, dy, parts[part], stride[0], stride[1], dilation[0], dilation[1], pads[0], pads[1], start, stop)

    with slp_vectorised():
        run(0, 0, 0)  # compiles (inside the SLP block) before any thread calls it
        if len(parts) == 1:
            run(0, 0, n)
        else:  # one float64 accumulator per thread, images split in two
            _halves(lambda start, stop: run(0 if start == 0 else 1, start, stop), n, work=work)
    return sum(parts[1:], parts[0]).astype(dy.dtype)
