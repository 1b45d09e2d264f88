"""The register blocks of the generated direct-convolution kernels: which output-channel counts K
have a kernel, and how many output pixels (forward) or input channels (weight gradient) each
keeps in registers beside its K accumulators.  Read by :mod:`.direct_gen` (which writes the
kernels) and :mod:`.direct` (which dispatches to them); apart so that ``import convnet`` loads
neither the generator nor the 5 600 generated lines.
"""
from __future__ import annotations

#: output-channel counts with a kernel, and the pixel block of each: P·K accumulators in about
#: 8-12 AVX registers (the fastest blocks on an AVX2 CPU; see docs/tuning.md)
BLOCKS = {4: 8, 6: 8, 8: 8, 12: 4, 16: 4, 24: 3, 32: 3, 64: 1}
#: K with a weight-gradient kernel, and its input-channel block: CB·K sums in about 4-12 AVX
#: registers (likewise tuned on AVX2)
DW_BLOCKS = {4: 8, 6: 8, 8: 4, 12: 4, 16: 4, 24: 3, 32: 3}
