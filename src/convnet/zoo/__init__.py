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


def canonical(name) -> str:
    """The registered spelling of a model name, matched without regard to case (``"VGG16"`` → ``"vgg16"``).

    Raises ConfigError for an unknown name, suggesting the closest ones.
    """
    if name in REGISTRY:
        return name
    folded = {n.lower(): n for n in REGISTRY}
    key = str(name).strip().lower()
    if key in folded:
        return folded[key]
    close = [folded[m] for m in difflib.get_close_matches(key, folded, n=3)]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"Unknown model {name!r}; expected one of {names()} (any case).{hint}")


def get(name: str, **kwargs):
    """Build the named model: ``get("resnet50", num_classes=10, input_shape=(64, 64, 3))``; any case."""
    return REGISTRY[canonical(name)].build(**kwargs)


def describe(name: str) -> str:
    """One line about the named model (family and paper)."""
    return REGISTRY[canonical(name)].description


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

__all__ = ["canonical", "describe", "get", "names", "register"]
