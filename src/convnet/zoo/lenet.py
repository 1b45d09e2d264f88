"""LeNet-5 (LeCun et al. 1998), the first successful ConvNet of the notes.

``INPUT 32×32×1 -> C1: CONV5-6 -> S2: 2×2 subsampling -> C3: CONV5-16 ->
S4: 2×2 subsampling -> C5: CONV5-120 -> F6: FC-84 -> OUTPUT: FC-10``

Choices (documented in docs/zoo.md): the subsampling layers are 2×2/2 average
pooling (the paper's trainable coefficient and bias are dropped), activations
are ReLU instead of the scaled tanh, C3 is fully connected to S2 (the paper's
partial connection table is a detail of its time), and the output is a plain
FC layer instead of RBF units.  61,706 parameters at 32×32×1 and 10 classes.
"""
from __future__ import annotations

from ..layers import AvgPool2D, Conv2D, Dense, ReLU
from ..net import Net
from .registry import check_classes, register, scaled


@register("lenet5", "LeNet-5 (LeCun et al. 1998): C1-S2-C3-S4-C5-F6-output, 32×32×1")
def lenet5(*, num_classes: int = 10, input_shape=(32, 32, 1), width: float = 1.0) -> Net:
    """LeNet-5 with ReLU and average-pool subsampling; layer names c1, s2, c3, s4, c5, f6, output."""
    check_classes(num_classes)
    net = Net(name="lenet5", input_shape=input_shape)
    net.add(Conv2D(scaled(6, width), 5, name="c1"))
    net.add(ReLU(name="relu1"))
    net.add(AvgPool2D(2, name="s2"))
    net.add(Conv2D(scaled(16, width), 5, name="c3"))
    net.add(ReLU(name="relu3"))
    net.add(AvgPool2D(2, name="s4"))
    net.add(Conv2D(scaled(120, width), 5, name="c5"))
    net.add(ReLU(name="relu5"))
    net.add(Dense(scaled(84, width), name="f6"))
    net.add(ReLU(name="relu6"))
    net.add(Dense(num_classes, name="output"))
    net.head = "softmax"
    return net
