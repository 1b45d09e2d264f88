"""convnet: a readable convolutional-network engine in NumPy.

    >>> import convnet
    >>> net = convnet.parse("INPUT[32x32x3] -> [CONV3-32 -> RELU]*2 -> POOL2 -> FC-10")
    >>> net.output_shape()
    (10,)
"""
__version__ = "0.1.0"

from . import errors, layers, ops, zoo
from .analysis import MemoryModel, lint, summarize
from .analysis.surgery import dense_scores, to_dense, to_fully_convolutional
from .net import Net, Node
from .pattern import parse, to_pattern

__all__ = [
    "__version__", "errors", "layers", "ops", "zoo", "Net", "Node", "parse", "to_pattern",
    "summarize", "MemoryModel", "lint", "to_fully_convolutional", "to_dense", "dense_scores",
]
