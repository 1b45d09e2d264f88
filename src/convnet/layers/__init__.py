"""Stateful layers: thin wrappers over the ops in :mod:`convnet.ops` (protocol in ``base.py``).

:data:`LAYERS` is the registry: every layer class convnet knows by name.  The pattern language
finds a layer's class here from its word; everything else asks the layer object itself (its
kind, name prefix, cost, footprint, in-place flags).  Adding a layer is one file in this
package, one op pair in :mod:`convnet.ops`, their tests, and one line below.
"""
from .activation import Dropout, LeakyReLU, ReLU
from .base import Layer
from .conv import Conv2D
from .dense import Dense, Flatten
from .fractional import FractionalMaxPool2D
from .local import LocallyConnected2D
from .merge import Add, Concat
from .norm import LRN, BatchNorm
from .pool import AvgPool2D, GlobalAvgPool, L2Pool2D, MaxPool2D

#: the layer classes, one line each
LAYERS: tuple[type[Layer], ...] = (
    Conv2D,
    LocallyConnected2D,
    Dense,
    Flatten,
    MaxPool2D,
    AvgPool2D,
    L2Pool2D,
    FractionalMaxPool2D,
    GlobalAvgPool,
    LRN,
    BatchNorm,
    ReLU,
    LeakyReLU,
    Dropout,
    Add,
    Concat,
)

__all__ = [
    "LAYERS", "Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "L2Pool2D", "FractionalMaxPool2D", "GlobalAvgPool",
    "LRN", "BatchNorm", "Dense", "Flatten", "ReLU", "LeakyReLU", "Dropout", "LocallyConnected2D", "Add", "Concat",
]
