"""AlexNet as published (Krizhevsky, Sutskever & Hinton 2012), in Caffe's layer names.

227×227×3 input (the paper's "224" does not divide: (224 - 11)/4 + 1 = 54.25)::

    conv1  96 11×11/4        -> 55×55×96    relu1, norm1 (LRN), pool1 3×3/2 -> 27×27×96
    conv2  256 5×5 P2, groups 2 -> 27×27×256  relu2, norm2, pool2 3×3/2 -> 13×13×256
    conv3  384 3×3 P1          -> 13×13×384  relu3
    conv4  384 3×3 P1 groups 2 -> 13×13×384  relu4
    conv5  256 3×3 P1 groups 2 -> 13×13×256  relu5, pool5 3×3/2 -> 6×6×256
    fc6 4096, relu6, drop6;  fc7 4096, relu7, drop7;  fc8 num_classes

The groups of 2 are the paper's two GPUs; pooling overlaps (F=3 > S=2).
60,965,224 parameters with 1000 classes.
"""
from __future__ import annotations

from ..layers import LRN, Conv2D, Dense, Dropout, MaxPool2D, ReLU
from ..net import Net
from .registry import check_classes, register, scaled


@register("alexnet", "AlexNet (Krizhevsky et al. 2012): 227×227×3, grouped conv2/4/5, LRN, overlapping pooling")
def alexnet(*, num_classes: int = 1000, input_shape=(227, 227, 3), width: float = 1.0, dropout: float = 0.5) -> Net:
    """The original AlexNet (groups=2 on conv2, conv4, conv5)."""
    check_classes(num_classes)
    c = lambda k: scaled(k, width)
    net = Net(name="alexnet", input_shape=input_shape)
    net.add(Conv2D(c(96), 11, stride=4, name="conv1"))
    net.add(ReLU(name="relu1"))
    net.add(LRN(name="norm1"))
    net.add(MaxPool2D(3, stride=2, name="pool1"))
    net.add(Conv2D(c(256), 5, padding=2, groups=2, name="conv2"))
    net.add(ReLU(name="relu2"))
    net.add(LRN(name="norm2"))
    net.add(MaxPool2D(3, stride=2, name="pool2"))
    net.add(Conv2D(c(384), 3, padding=1, name="conv3"))
    net.add(ReLU(name="relu3"))
    net.add(Conv2D(c(384), 3, padding=1, groups=2, name="conv4"))
    net.add(ReLU(name="relu4"))
    net.add(Conv2D(c(256), 3, padding=1, groups=2, name="conv5"))
    net.add(ReLU(name="relu5"))
    net.add(MaxPool2D(3, stride=2, name="pool5"))
    for i in (6, 7):
        net.add(Dense(c(4096), name=f"fc{i}"))
        net.add(ReLU(name=f"relu{i}"))
        net.add(Dropout(dropout, seed=i, name=f"drop{i}"))
    net.add(Dense(num_classes, name="fc8"))
    net.head = "softmax"
    return net
