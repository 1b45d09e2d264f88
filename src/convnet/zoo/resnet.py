"""ResNets for ImageNet (He et al. 2015) as torchvision defines them.

Stem ``conv1 7×7/2 P3 (64, no bias) -> bn1 -> relu -> maxpool 3×3/2 P1``, four
stages ``layer1..layer4`` of residual blocks with 64, 128, 256, 512 planes
(stages 2-4 start with stride 2), global average pooling ``avgpool`` and ``fc``.

============  =============  ==========  ==========================
name          block          blocks      parameters (1000 classes)
============  =============  ==========  ==========================
resnet18      basic          2 2 2 2     11,689,512
resnet34      basic          3 4 6 3     21,797,672
resnet50      bottleneck     3 4 6 3     25,557,032
resnet101     bottleneck     3 4 23 3    44,549,160
resnet152     bottleneck     3 8 36 3    60,192,808
============  =============  ==========  ==========================

Names as torchvision's state dict: ``layer1.0.conv1``, ``layer1.0.bn1``,
``layer2.0.downsample.0`` (the 1×1 projection) and ``layer2.0.downsample.1`` (its BN),
plus our own ``layer1.0.relu1``, ``layer1.0.add``.  Shortcuts are identities
except where the shape changes (projection, "option B").  The stride of a
bottleneck sits on its 3×3 conv (torchvision's "v1.5").
"""
from __future__ import annotations

from ..layers import BatchNorm, Conv2D, Dense, GlobalAvgPool, MaxPool2D, ReLU
from ..net import Net
from .blocks import basic_block, bottleneck_block
from .registry import check_classes, register, scaled

LAYOUTS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}


def resnet(block: str, layers, *, num_classes: int = 1000, input_shape=(224, 224, 3), width: float = 1.0,
           name: str = "resnet") -> Net:
    """A torchvision-style ResNet with ``block`` in ("basic", "bottleneck") and blocks per stage ``layers``."""
    check_classes(num_classes)
    net = Net(name=name, input_shape=input_shape)
    c = scaled(64, width)
    net.add(Conv2D(c, 7, stride=2, padding=3, use_bias=False, fit="crop", name="conv1"))
    net.add(BatchNorm(name="bn1"))
    net.add(ReLU(name="relu"))
    x = net.add(MaxPool2D(3, stride=2, padding=1, fit="crop", name="maxpool"))
    expansion = 1 if block == "basic" else 4
    in_channels = c
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        planes = scaled(planes, width)
        for i in range(count):
            stride = 2 if stage > 1 and i == 0 else 1
            prefix = f"layer{stage}.{i}."
            if block == "basic":
                x = basic_block(net, x, in_channels, planes, stride=stride, prefix=prefix)
            else:
                x = bottleneck_block(net, x, in_channels, planes, stride=stride, prefix=prefix, expansion=expansion)
            in_channels = planes * expansion
    net.add(GlobalAvgPool(name="avgpool"))
    net.add(Dense(num_classes, name="fc"))
    net.head = "softmax"
    return net


def _variant(name: str):
    block, layers = LAYOUTS[name]
    description = f"ResNet-{name[6:]} (He et al. 2015, torchvision): {block} blocks {'-'.join(map(str, layers))}"

    @register(name, description)
    def build(*, num_classes: int = 1000, input_shape=(224, 224, 3), width: float = 1.0) -> Net:
        return resnet(block, layers, num_classes=num_classes, input_shape=input_shape, width=width, name=name)

    build.__name__ = name
    build.__doc__ = description
    return build


resnet18 = _variant("resnet18")
resnet34 = _variant("resnet34")
resnet50 = _variant("resnet50")
resnet101 = _variant("resnet101")
resnet152 = _variant("resnet152")
