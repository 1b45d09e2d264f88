"""GoogLeNet / Inception v1 (Szegedy et al. 2014), Table 1 of the paper, in Caffe's names.

::

    conv1/7x7_s2    64 7×7/2 P3 (floor)    112×112×64   + relu, pool1/3x3_s2 (ceil) 56×56, pool1/norm1 (LRN)
    conv2/3x3_reduce 64 1×1, conv2/3x3 192 3×3 P1       56×56×192    + conv2/norm2, pool2/3x3_s2 -> 28×28
    inception_3a (64, 96-128, 16-32, 32) -> 28×28×256;  3b (128, 128-192, 32-96, 64) -> 480
    pool3/3x3_s2 -> 14×14
    inception_4a .. 4e -> 14×14×512, 512, 512, 528, 832;  pool4/3x3_s2 -> 7×7
    inception_5a, 5b -> 7×7×832, 1024
    pool5/7x7_s1 (global average pooling), pool5/drop_7x7_s1 (40%), loss3/classifier FC

The numbers per module are ``#1×1, #3×3 reduce-#3×3, #5×5 reduce-#5×5, pool proj``.
"Average pooling at the top instead of FC layers": the only FC is the
classifier.  Pooling rounds up as in Caffe (``fit="pad"``).  The auxiliary
classifiers (training-only) are left out.  6,998,552 parameters with 1000 classes.
"""
from __future__ import annotations

from ..layers import LRN, Conv2D, Dense, Dropout, GlobalAvgPool, MaxPool2D, ReLU
from ..net import Net
from .blocks import inception
from .registry import check_classes, register, scaled

#: (name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) from the paper's Table 1
MODULES = {
    "3": [("inception_3a", 64, 96, 128, 16, 32, 32), ("inception_3b", 128, 128, 192, 32, 96, 64)],
    "4": [("inception_4a", 192, 96, 208, 16, 48, 64), ("inception_4b", 160, 112, 224, 24, 64, 64),
          ("inception_4c", 128, 128, 256, 24, 64, 64), ("inception_4d", 112, 144, 288, 32, 64, 64),
          ("inception_4e", 256, 160, 320, 32, 128, 128)],
    "5": [("inception_5a", 256, 160, 320, 32, 128, 128), ("inception_5b", 384, 192, 384, 48, 128, 128)],
}


@register("googlenet", "GoogLeNet / Inception v1 (Szegedy et al. 2014): 9 Inception modules, average pooling top")
def googlenet(*, num_classes: int = 1000, input_shape=(224, 224, 3), width: float = 1.0, dropout: float = 0.4) -> Net:
    """Inception v1 without the auxiliary classifiers."""
    check_classes(num_classes)
    c = lambda k: scaled(k, width)
    net = Net(name="googlenet", input_shape=input_shape)
    net.add(Conv2D(c(64), 7, stride=2, padding=3, fit="crop", name="conv1/7x7_s2"))
    net.add(ReLU(name="conv1/relu_7x7"))
    net.add(MaxPool2D(3, stride=2, fit="pad", name="pool1/3x3_s2"))
    net.add(LRN(name="pool1/norm1"))
    net.add(Conv2D(c(64), 1, name="conv2/3x3_reduce"))
    net.add(ReLU(name="conv2/relu_3x3_reduce"))
    net.add(Conv2D(c(192), 3, padding=1, name="conv2/3x3"))
    net.add(ReLU(name="conv2/relu_3x3"))
    net.add(LRN(name="conv2/norm2"))
    x = net.add(MaxPool2D(3, stride=2, fit="pad", name="pool2/3x3_s2"))
    for stage in ("3", "4", "5"):
        for name, *sizes in MODULES[stage]:
            x = inception(net, x, name, *(c(s) for s in sizes))
        if stage != "5":
            x = net.add(MaxPool2D(3, stride=2, fit="pad", name=f"pool{stage}/3x3_s2"))
    net.add(GlobalAvgPool(name="pool5/7x7_s1"))
    net.add(Dropout(dropout, seed=5, name="pool5/drop_7x7_s1"))
    net.add(Dense(num_classes, name="loss3/classifier"))
    net.head = "softmax"
    return net
