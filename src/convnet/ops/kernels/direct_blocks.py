"""The register blocks of the generated direct-convolution kernels: which output-channel counts K
have a kernel, and how many output pixels (forward) or input channels (weight gradient) each
keeps in registers beside its K accumulators.  Read by :mod:`.direct_gen` (which writes the
kernels) and :mod:`.direct` (which dispatches to them); apart so that ``import convnet`` loads
neither the generator nor the 5 600 generated lines.
"""
from __future__ import annotations

#: output-channel counts with a kernel, and the pixel block of each (P·K/8 ≈ 8-12 AVX registers;
#: measured: K=16 P=4 79 GFLOP/s single-threaded, P=6 51; K=32 P=3 73, P=2 67; K=64 (for
#: RGB inputs) P=1 2.0 ms on 224×224×3, P=2 4.2)
BLOCKS = {4: 8, 6: 8, 8: 8, 12: 4, 16: 4, 24: 3, 32: 3, 64: 1}
#: K with a weight-gradient kernel, and its input-channel block (CB·K/8 ≈ 4-12 AVX registers;
#: measured on two threads, N = 64: K=16 CB=4 4.0 ms, CB=2 4.5; K=32 CB=3 3.4, CB=2 3.6 — against
#: 7.5 for im2col's GEMM; K=24 CB=3 1.6, CB=4 2.4; K=12 CB=4 1.8, CB=6 2.9)
DW_BLOCKS = {4: 8, 6: 8, 8: 4, 12: 4, 16: 4, 24: 3, 32: 3}
