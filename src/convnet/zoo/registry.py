"""The model registry: name -> builder, filled by ``@register`` in each family module."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable
    description: str


REGISTRY: dict[str, Entry] = {}


def register(name: str, description: str = ""):
    """Decorator: ``@register("vgg16", "VGG configuration D")`` adds a builder to the zoo."""

    def wrap(fn: Callable) -> Callable:
        REGISTRY[name] = Entry(name, fn, description or (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return wrap


def scaled(channels: int, width: float) -> int:
    """``channels · width``, rounded, at least 1 (the ``width`` multiplier of every builder)."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ConfigError(f"Argument `width` must be a positive number; received width={width!r}.")
    return max(1, round(channels * width))


def check_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"Argument `num_classes` must be a positive integer; received num_classes={num_classes!r}.")
    return num_classes
