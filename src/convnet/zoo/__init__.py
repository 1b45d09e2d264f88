"""The case-study networks of the notes, random-initialised (no downloads).

Every builder returns an unbuilt :class:`~convnet.net.Net` (no parameter is
allocated until ``net.build(rng=...)`` or the first forward), takes
``num_classes`` and ``input_shape`` keyword arguments, and most take ``width``
(a multiplier on every channel count, for quick experiments and tests).

    >>> from convnet import zoo
    >>> zoo.names()[:3]
    ['alexnet', 'allconvnet', 'googlenet']
    >>> net = zoo.get("vgg16", num_classes=10)
    >>> net.num_params()            # from shapes, nothing allocated
    134301514

Layer names follow the papers (``conv1_1``, ``fc6``, ``inception_3a/1x1``,
``layer1.0.conv1``); docs/zoo.md lists each family.
"""
from __future__ import annotations

import difflib

from ..errors import ConfigError
from .registry import REGISTRY, register


def names() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(REGISTRY)


def get(name: str, **kwargs):
    """Build the named model: ``get("resnet50", num_classes=10, input_shape=(64, 64, 3))``."""
    if name not in REGISTRY:
        close = difflib.get_close_matches(str(name), REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"Unknown model {name!r}; expected one of {names()}.{hint}")
    return REGISTRY[name].build(**kwargs)


def describe(name: str) -> str:
    """One line about the named model (family and paper)."""
    if name not in REGISTRY:
        get(name)  # raises the helpful error
    return REGISTRY[name].description


from . import (  # noqa: F401  (they register)
    alexnet,
    allconv,
    googlenet,
    lenet,
    notes,
    resnet,
    resnet_cifar,
    vgg,
    zfnet,
)

__all__ = ["describe", "get", "names", "register"]
