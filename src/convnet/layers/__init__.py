"""Stateful layers: thin wrappers over the ops in :mod:`convnet.ops` (protocol in ``base.py``)."""
from .activation import Dropout, ReLU
from .base import Layer
from .conv import Conv2D
from .dense import Dense, Flatten
from .fractional import FractionalMaxPool2D
from .local import LocallyConnected2D
from .merge import Add, Concat
from .norm import LRN, BatchNorm
from .pool import AvgPool2D, GlobalAvgPool, L2Pool2D, MaxPool2D

__all__ = [
    "Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "L2Pool2D", "FractionalMaxPool2D", "GlobalAvgPool",
    "LRN", "BatchNorm", "Dense", "Flatten", "ReLU", "Dropout", "LocallyConnected2D", "Add", "Concat",
]
