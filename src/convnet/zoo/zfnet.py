"""ZF Net (Zeiler & Fergus 2013): AlexNet with a 7×7/2 first layer and a stride-2 conv2.

224×224×3 input, as in the paper's Figure 3::

    conv1  96 7×7/2 P1 (floor)  -> 110×110×96   relu1, pool1 3×3/2 (ceil) -> 55×55×96, norm1
    conv2  256 5×5/2            -> 26×26×256    relu2, pool2 3×3/2 (ceil) -> 13×13×256, norm2
    conv3  384 3×3 P1 -> 13×13×384;  conv4 384 3×3 P1;  conv5 256 3×3 P1
    pool5  3×3/2                -> 6×6×256
    fc6 4096, fc7 4096 (ReLU, dropout), fc8 num_classes

The paper's sizes need Caffe's rounding: conv1 floors (224 + 2 - 7)/2 + 1 = 110.5
to 110 and the pools round up (``fit="crop"`` / ``fit="pad"``); the sizing
lint reports both.  The contrast normalization after pool1/pool2 is LRN.
"""
from __future__ import annotations

from ..layers import LRN, Conv2D, Dense, Dropout, MaxPool2D, ReLU
from ..net import Net
from .registry import check_classes, register, scaled


@register("zfnet", "ZF Net (Zeiler & Fergus 2013): 7×7/2 first layer, 224×224×3")
def zfnet(*, num_classes: int = 1000, input_shape=(224, 224, 3), width: float = 1.0, dropout: float = 0.5) -> Net:
    """ZF Net with Caffe rounding (conv1 floors, pools ceil)."""
    check_classes(num_classes)
    c = lambda k: scaled(k, width)
    net = Net(name="zfnet", input_shape=input_shape)
    net.add(Conv2D(c(96), 7, stride=2, padding=1, fit="crop", name="conv1"))
    net.add(ReLU(name="relu1"))
    net.add(MaxPool2D(3, stride=2, fit="pad", name="pool1"))
    net.add(LRN(name="norm1"))
    net.add(Conv2D(c(256), 5, stride=2, fit="crop", name="conv2"))
    net.add(ReLU(name="relu2"))
    net.add(MaxPool2D(3, stride=2, fit="pad", name="pool2"))
    net.add(LRN(name="norm2"))
    net.add(Conv2D(c(384), 3, padding=1, name="conv3"))
    net.add(ReLU(name="relu3"))
    net.add(Conv2D(c(384), 3, padding=1, name="conv4"))
    net.add(ReLU(name="relu4"))
    net.add(Conv2D(c(256), 3, padding=1, name="conv5"))
    net.add(ReLU(name="relu5"))
    net.add(MaxPool2D(3, stride=2, fit="pad", name="pool5"))
    for i in (6, 7):
        net.add(Dense(c(4096), name=f"fc{i}"))
        net.add(ReLU(name=f"relu{i}"))
        net.add(Dropout(dropout, seed=i, name=f"drop{i}"))
    net.add(Dense(num_classes, name="fc8"))
    net.head = "softmax"
    return net
