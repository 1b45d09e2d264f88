"""All-CNN-C (Springenberg et al. 2015, "Striving for Simplicity: The All Convolutional Net").

No pooling: the two max-pooling layers of the base model are replaced by
3×3 CONVs with stride 2.  For 32×32×3 (CIFAR-10)::

    drop0 (20% of the input)
    conv1 96 3×3, conv2 96 3×3, conv3 96 3×3/2 -> 16×16×96, drop3 (50%)
    conv4 192 3×3, conv5 192 3×3, conv6 192 3×3/2 -> 8×8×192, drop6 (50%)
    conv7 192 3×3 valid -> 6×6×192, conv8 192 1×1, conv9 num_classes 1×1
    gap (global average over 6×6), softmax

Every CONV is followed by a ReLU (conv9 too, as in the paper's Table 2).  The
stride-2 CONVs pad 1 and floor ((32 + 2 - 3)/2 + 1 = 16.5 -> 16, as Theano/
Lasagne did).  1,369,738 parameters with 10 classes.
"""
from __future__ import annotations

from ..layers import Conv2D, Dropout, GlobalAvgPool, ReLU
from ..net import Net
from .registry import check_classes, register, scaled


@register("allconvnet", "All-CNN-C (Springenberg et al. 2015): only CONV layers, strided CONVs instead of pooling")
def allconvnet(*, num_classes: int = 10, input_shape=(32, 32, 3), width: float = 1.0, dropout: bool = True) -> Net:
    """All-CNN-C; ``dropout=False`` leaves out the three dropout layers."""
    check_classes(num_classes)
    c = lambda k: scaled(k, width)
    net = Net(name="allconvnet", input_shape=input_shape)
    if dropout:
        net.add(Dropout(0.2, seed=0, name="drop0"))
    layers = [(1, 96, 3, 1, 1), (2, 96, 3, 1, 1), (3, 96, 3, 2, 1), (4, 192, 3, 1, 1), (5, 192, 3, 1, 1),
              (6, 192, 3, 2, 1), (7, 192, 3, 1, 0), (8, 192, 1, 1, 0)]
    for i, k, f, s, p in layers:
        net.add(Conv2D(c(k), f, stride=s, padding=p, fit="crop" if s > 1 else "error", name=f"conv{i}"))
        net.add(ReLU(name=f"relu{i}"))
        if dropout and s == 2:
            net.add(Dropout(0.5, seed=i, name=f"drop{i}"))
    net.add(Conv2D(num_classes, 1, name="conv9"))
    net.add(ReLU(name="relu9"))
    net.add(GlobalAvgPool(name="gap"))
    net.head = "softmax"
    return net
