"""convnet: a readable convolutional-network engine in NumPy.

    >>> import convnet
    >>> net = convnet.parse("INPUT[32x32x3] -> [CONV3-32 -> RELU]*2 -> POOL2 -> FC-10")
    >>> net.output_shape()
    (10,)
"""
__version__ = "0.1.0"

import os as _os
import sys as _sys

if "numpy" not in _sys.modules:
    # OpenBLAS's idle workers spin for about 0.1 s after every GEMM (2^28 cycles) and take a core
    # from convnet's compiled kernels, which run between GEMMs.  2^20 cycles (~0.4 ms) still
    # bridges a burst of GEMMs (Winograd's 36) and lets them sleep during a kernel: a CIFAR
    # training step measured 20 % faster (median of 15, three runs; VGG16 inference unchanged;
    # sleeping at once, 2^4, cost some of that back).  OpenBLAS reads this when NumPy loads it,
    # so it only applies when convnet is imported first (the `convnet` command); a value already
    # set in the environment wins.
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

from . import _malloc

# glibc: keep freed activation-sized arrays in the heap instead of unmapping them and faulting
# them in again (see convnet/_malloc.py; CONVNET_MALLOC=0 or glibc's MALLOC_*_ variables opt out)
_malloc.tune()

from . import errors, layers, ops, zoo  # noqa: E402
from .analysis import MemoryModel, lint, summarize
from .analysis.surgery import dense_scores, to_dense, to_fully_convolutional
from .net import Net, Node
from .pattern import parse, to_pattern

__all__ = [
    "__version__", "errors", "layers", "ops", "zoo", "Net", "Node", "parse", "to_pattern",
    "summarize", "MemoryModel", "lint", "to_fully_convolutional", "to_dense", "dense_scores",
]
