"""The example layer patterns of the notes ("Layer Patterns"), made concrete for 32×32×3.

The notes write ``INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC``
and give four instances; each is built here from the pattern language with
hyperparameters that follow the notes' sizing rules (3×3 CONVs with stride 1
and padding 1, 2×2/2 max pooling):

==================  ===========================================================================
name                pattern (``C`` = num_classes, ``k`` scaled by ``width``)
==================  ===========================================================================
notes_linear        INPUT -> FC-C                                  (a linear classifier, N=M=K=0)
notes_conv          INPUT -> CONV3-32 -> RELU -> FC-C
notes_cifar         INPUT -> CONV3-12 -> RELU -> POOL2 -> FC-C     (the notes' CIFAR-10 example)
notes_conv_pool     INPUT -> [CONV3-32 -> RELU -> POOL2]*2 -> FC-128 -> RELU -> FC-C
notes_deep          INPUT -> [[CONV3-64 -> RELU]*2 -> POOL2]*3 -> [FC-512 -> RELU]*2 -> FC-C
==================  ===========================================================================
"""
from __future__ import annotations

import re

from ..net import Net
from ..pattern import parse
from .registry import check_classes, register, scaled

PATTERNS = {
    "notes_linear": "FC-{C}",
    "notes_conv": "CONV3-{32} -> RELU -> FC-{C}",
    "notes_cifar": "CONV3-{12} -> RELU -> POOL2 -> FC-{C}",
    "notes_conv_pool": "[CONV3-{32} -> RELU -> POOL2]*2 -> FC-{128} -> RELU -> FC-{C}",
    "notes_deep": "[[CONV3-{64} -> RELU]*2 -> POOL2]*3 -> [FC-{512} -> RELU]*2 -> FC-{C}",
}


def pattern_text(name: str, *, num_classes: int = 10, input_shape=(32, 32, 3), width: float = 1.0) -> str:
    """The concrete pattern string of a notes example."""
    body = PATTERNS[name]
    body = re.sub(r"\{(\d+)\}", lambda m: str(scaled(int(m.group(1)), width)), body).replace("{C}", str(num_classes))
    return "INPUT[" + "x".join(str(int(d)) for d in input_shape) + "] -> " + body + " -> SOFTMAX"


def _variant(name: str, description: str):
    @register(name, description)
    def build(*, num_classes: int = 10, input_shape=(32, 32, 3), width: float = 1.0) -> Net:
        check_classes(num_classes)
        return parse(pattern_text(name, num_classes=num_classes, input_shape=input_shape, width=width), name=name)

    build.__name__ = name
    build.__doc__ = description
    return build


notes_linear = _variant("notes_linear", "The notes' linear classifier: INPUT -> FC")
notes_conv = _variant("notes_conv", "The notes' INPUT -> CONV -> RELU -> FC")
notes_cifar = _variant("notes_cifar", "The notes' CIFAR-10 example: INPUT -> CONV(12) -> RELU -> POOL -> FC")
notes_conv_pool = _variant("notes_conv_pool", "The notes' INPUT -> [CONV -> RELU -> POOL]*2 -> FC -> RELU -> FC")
notes_deep = _variant("notes_deep", "The notes' INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU]*2 -> FC")
