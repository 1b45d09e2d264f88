"""VGG networks (Simonyan & Zisserman 2014), configurations A to E of the paper's Table 1.

Every CONV is ``convF-K`` with stride 1 and padding (F-1)/2 (so 3×3 keeps the
size and C's 1×1 convs too), every pool 2×2/2 max pooling, then
FC-4096 -> FC-4096 -> FC-num_classes (ReLU and dropout 0.5 after the first two)::

    A (vgg11)      conv3-64 | conv3-128 | conv3-256 ×2 | conv3-512 ×2 | conv3-512 ×2
    A-LRN          A with LRN after conv1_1
    B (vgg13)      two conv3 in every block
    C (vgg16_c)    B plus a conv1 as the third layer of blocks 3, 4 and 5
    D (vgg16)      B plus a conv3 as the third layer of blocks 3, 4 and 5
    E (vgg19)      four conv3 in blocks 3, 4 and 5

Names: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``, ``norm1``,
``fc6``/``relu6``/``drop6``, ``fc7``..., ``fc8``.  With 1000 classes at
224×224×3: 132,863,336 / 132,863,336 / 133,047,848 / 133,638,952 /
138,357,544 / 143,667,240 parameters (the paper's 133, 133, 133, 134, 138, 144 M).
"""
from __future__ import annotations

from ..layers import LRN, Conv2D, Dense, Dropout, MaxPool2D, ReLU
from ..net import Net
from .registry import check_classes, register, scaled

# each block: a list of (filter size F, filters K)
_3 = 3
CONFIGS = {
    "A": [[(_3, 64)], [(_3, 128)], [(_3, 256)] * 2, [(_3, 512)] * 2, [(_3, 512)] * 2],
    "B": [[(_3, 64)] * 2, [(_3, 128)] * 2, [(_3, 256)] * 2, [(_3, 512)] * 2, [(_3, 512)] * 2],
    "C": [[(_3, 64)] * 2, [(_3, 128)] * 2, [(_3, 256)] * 2 + [(1, 256)], [(_3, 512)] * 2 + [(1, 512)],
          [(_3, 512)] * 2 + [(1, 512)]],
    "D": [[(_3, 64)] * 2, [(_3, 128)] * 2, [(_3, 256)] * 3, [(_3, 512)] * 3, [(_3, 512)] * 3],
    "E": [[(_3, 64)] * 2, [(_3, 128)] * 2, [(_3, 256)] * 4, [(_3, 512)] * 4, [(_3, 512)] * 4],
}


def vgg(config: str, *, num_classes: int = 1000, input_shape=(224, 224, 3), width: float = 1.0, lrn: bool = False,
        dropout: float = 0.5, name: str | None = None) -> Net:
    """Any VGG configuration (``"A"`` .. ``"E"``); ``lrn=True`` gives A-LRN's LRN after conv1_1."""
    check_classes(num_classes)
    blocks = CONFIGS[config]
    net = Net(name=name or f"vgg_{config}", input_shape=input_shape)
    for b, block in enumerate(blocks, start=1):
        for i, (f, k) in enumerate(block, start=1):
            net.add(Conv2D(scaled(k, width), f, padding=(f - 1) // 2, name=f"conv{b}_{i}"))
            net.add(ReLU(name=f"relu{b}_{i}"))
            if lrn and b == 1 and i == 1:
                net.add(LRN(name="norm1"))
        net.add(MaxPool2D(2, name=f"pool{b}"))
    for i in (6, 7):
        net.add(Dense(scaled(4096, width), name=f"fc{i}"))
        net.add(ReLU(name=f"relu{i}"))
        net.add(Dropout(dropout, seed=i, name=f"drop{i}"))
    net.add(Dense(num_classes, name="fc8"))
    net.head = "softmax"
    return net


def _variant(name: str, config: str, lrn: bool, description: str):
    @register(name, description)
    def build(*, num_classes: int = 1000, input_shape=(224, 224, 3), width: float = 1.0, dropout: float = 0.5) -> Net:
        return vgg(config, num_classes=num_classes, input_shape=input_shape, width=width, lrn=lrn, dropout=dropout,
                   name=name)

    build.__name__ = name
    build.__doc__ = description
    return build


vgg11 = _variant("vgg11", "A", False, "VGG configuration A (11 weight layers)")
vgg11_lrn = _variant("vgg11_lrn", "A", True, "VGG configuration A-LRN (A with LRN after conv1_1)")
vgg13 = _variant("vgg13", "B", False, "VGG configuration B (13 weight layers)")
vgg16_c = _variant("vgg16_c", "C", False, "VGG configuration C (16 weight layers, three of them 1×1)")
vgg16 = _variant("vgg16", "D", False, "VGG configuration D (16 weight layers), the notes' VGGNet")
vgg19 = _variant("vgg19", "E", False, "VGG configuration E (19 weight layers)")
