"""Stateful layers: thin wrappers over the ops in :mod:`convnet.ops` (protocol in ``base.py``).

:data:`LAYERS` is the registry: every layer class convnet knows by name.  The pattern language
finds a layer's class here from its word; everything else asks the layer object itself (its
kind, name prefix, cost, footprint, in-place flags).  Adding a layer is one file in this
package, one op pair in :mod:`convnet.ops`, their tests, and one line below.
"""
from .activation import Clip, Dropout, Identity, LeakyReLU, ReLU, ReLU6, Sigmoid
from .base import Layer
from .conv import Conv2D
from .conv_transpose import ConvTranspose2D
from .dense import Dense, Flatten
from .fractional import FractionalMaxPool2D
from .local import LocallyConnected2D
from .merge import Add, Concat, Mul
from .norm import LRN, BatchNorm, ChannelAffine
from .pool import AvgPool2D, GlobalAvgPool, GlobalLpPool, GlobalMaxPool, L2Pool2D, LpPool2D, MaxPool2D
from .shuffle import ChannelShuffle
from .softmax import LogSoftmax, Softmax

#: the layer classes, one line each
LAYERS: tuple[type[Layer], ...] = (
    Conv2D,
    ConvTranspose2D,
    LocallyConnected2D,
    Dense,
    Flatten,
    MaxPool2D,
    AvgPool2D,
    LpPool2D,
    L2Pool2D,
    FractionalMaxPool2D,
    GlobalAvgPool,
    GlobalMaxPool,
    GlobalLpPool,
    LRN,
    BatchNorm,
    ChannelAffine,
    ReLU,
    LeakyReLU,
    Sigmoid,
    Clip,
    ReLU6,
    Identity,
    Softmax,
    LogSoftmax,
    Dropout,
    ChannelShuffle,
    Add,
    Mul,
    Concat,
)

__all__ = [
    "LAYERS", "Layer", "Conv2D", "ConvTranspose2D", "MaxPool2D", "AvgPool2D", "LpPool2D", "L2Pool2D",
    "FractionalMaxPool2D", "GlobalAvgPool", "GlobalMaxPool", "GlobalLpPool", "LRN", "BatchNorm", "ChannelAffine",
    "Dense", "Flatten", "ReLU", "LeakyReLU", "Sigmoid", "Clip", "ReLU6", "Identity", "Softmax", "LogSoftmax",
    "Dropout", "ChannelShuffle", "LocallyConnected2D", "Add", "Mul", "Concat",
]
