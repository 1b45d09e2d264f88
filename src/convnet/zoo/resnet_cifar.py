"""The CIFAR-10 ResNets of He et al. 2015, section 4.2 (6n + 2 layers).

``conv1 3×3 16 -> bn1 -> relu``, three stages ``layer1..layer3`` of n basic
blocks with 16, 32 and 64 filters (stages 2 and 3 start with stride 2; maps
32×32, 16×16, 8×8), global average pooling and ``fc``.  ``resnet20_cifar`` has
n = 3 and ``resnet56_cifar`` n = 9.

``shortcut`` picks what happens where the shape changes:

* ``"A"`` (the paper's choice for CIFAR, the default): identity on a
  subsampled input, with the extra channels zero-padded — no parameters
  (:class:`~convnet.zoo.blocks.PadShortcut`, node ``layerS.0.shortcut``).
  resnet20: 269,722 parameters; resnet56: 853,018.
* ``"B"``: a 1×1/2 projection with BN (``layerS.0.downsample.0/1``), as the
  ImageNet nets.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..layers import BatchNorm, Conv2D, Dense, GlobalAvgPool, ReLU
from ..net import Net
from .blocks import basic_block
from .registry import check_classes, register, scaled


def resnet_cifar(n: int, *, num_classes: int = 10, input_shape=(32, 32, 3), width: float = 1.0,
                 shortcut: str = "A", name: str | None = None) -> Net:
    """The 6n+2-layer CIFAR ResNet with option-A (default) or option-B shortcuts."""
    check_classes(num_classes)
    if shortcut not in ("A", "B"):
        raise ConfigError(f"Argument `shortcut` must be 'A' (zero-padding) or 'B' (projection); received {shortcut!r}.")
    net = Net(name=name or f"resnet{6 * n + 2}_cifar", input_shape=input_shape)
    c = scaled(16, width)
    net.add(Conv2D(c, 3, padding=1, use_bias=False, name="conv1"))
    net.add(BatchNorm(name="bn1"))
    x = net.add(ReLU(name="relu"))
    in_channels = c
    for stage, planes in enumerate((16, 32, 64), start=1):
        planes = scaled(planes, width)
        for i in range(n):
            stride = 2 if stage > 1 and i == 0 else 1
            x = basic_block(net, x, in_channels, planes, stride=stride, prefix=f"layer{stage}.{i}.", option=shortcut)
            in_channels = planes
    net.add(GlobalAvgPool(name="avgpool"))
    net.add(Dense(num_classes, name="fc"))
    net.head = "softmax"
    return net


@register("resnet20_cifar", "CIFAR ResNet-20 (He et al. 2015, §4.2), option-A shortcuts by default")
def resnet20_cifar(*, num_classes: int = 10, input_shape=(32, 32, 3), width: float = 1.0, shortcut: str = "A") -> Net:
    """ResNet-20 for 32×32 images (n = 3)."""
    return resnet_cifar(3, num_classes=num_classes, input_shape=input_shape, width=width, shortcut=shortcut,
                        name="resnet20_cifar")


@register("resnet56_cifar", "CIFAR ResNet-56 (He et al. 2015, §4.2), option-A shortcuts by default")
def resnet56_cifar(*, num_classes: int = 10, input_shape=(32, 32, 3), width: float = 1.0, shortcut: str = "A") -> Net:
    """ResNet-56 for 32×32 images (n = 9)."""
    return resnet_cifar(9, num_classes=num_classes, input_shape=input_shape, width=width, shortcut=shortcut,
                        name="resnet56_cifar")
