"""The register blocks of the generated direct-convolution kernels: which output-channel counts K
have a kernel, and how many output pixels (forward) or input channels (weight gradient) each
keeps in registers beside its K accumulators — one table per vector instruction set, picked by
:func:`convnet.ops.kernels.vector_isa`.  Read by :mod:`.direct_gen` (which writes the kernels)
and :mod:`.direct` (which dispatches to them); apart so that ``import convnet`` loads neither
the generator nor the generated lines.
"""
from __future__ import annotations

#: output-channel counts with a kernel, and the pixel block of each — or a cascade of blocks,
#: largest first, for the columns a larger block leaves over (the last few run one by one, as
#: the border columns do).  ``avx2`` (every CPU without AVX-512): P·K accumulators in about 8-12
#: of its 16 256-bit registers.  ``avx512``: six pixels, then two; cascades that split the inside
#: columns of the maps each K usually runs on into blocks of at least five (K = 16: 10-5-2 on
#: 32-wide maps, 30 = 3·10; K = 32: 7-2-1 on 16-wide, 14 = 2·7; K = 64: 5-2-1 on 8-wide),
#: in its 32 registers, 512-bit wide once `convnet.runtime.tune` lets LLVM use them; and K = 128
#: (three pixels: 24 of the 32 registers; AVX2's 16 cannot hold one pixel's 128 sums beside its
#: operands, so it has no kernel for 128).  Each table was the fastest measured on such a CPU
#: (docs/tuning.md)
BLOCKS = {
    "avx2": {4: 8, 6: 8, 8: 8, 12: 4, 16: 4, 24: 3, 32: 3, 64: 1},
    "avx512": {4: (6, 2), 6: (6, 2), 8: (6, 2), 12: (6, 2), 16: (10, 5, 2), 24: (6, 2), 32: (7, 2, 1), 64: (5, 2, 1),
               128: 3},
}
#: K with a weight-gradient kernel, and its input-channel block: CB·K sums in registers — or a
#: cascade, largest first, for the channels a larger block leaves over (the last few run one at a
#: time, each a chain of dependent FMAs: about 5× slower per channel than a block).  ``avx512``:
#: 8-16 blocks of 16 lanes (16 for K = 16, 8 for K = 32), so that the usual C = 16, 32, 64 leave no
#: channel over and the sums outnumber the FMA latency × ports
DW_BLOCKS = {
    "avx2": {4: (8, 4, 2), 6: (8, 4, 2), 8: (4, 2), 12: (4, 2), 16: (4, 2), 24: (3, 2), 32: (3, 2), 64: 1},
    "avx512": {4: (4, 2), 6: (6, 2), 8: (8, 4, 2), 12: (6, 2), 16: (16, 8, 4, 2), 24: (6, 2), 32: (8, 4, 2), 64: (4, 2)},
}
#: the widest K whose pixel blocks, for a 3-wide, undilated, stride-1 kernel, load each input value
#: once for the (up to) three pixels whose column taps read it — P + 2 loads for 3·P
#: multiply-adds of each channel, where the tap-by-tap run loads P per P — (0: none): with few
#: output channels the loop is bound by its loads, not its FMAs.  Measured on AVX-512 only
REUSE_MAX_K = {"avx2": 0, "avx512": 16}
#: the instruction sets with a table
ISAS = tuple(BLOCKS)
