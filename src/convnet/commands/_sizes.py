"""Sizes written on the command line: ``--input HxWxC`` and ``--image-size HxW`` (height first)."""
from __future__ import annotations

import re

from ..errors import ConfigError

_SEP = r"\s*[xX×,]\s*"


def parse_hwc(text: str, *, option: str = "--input") -> tuple[int, ...]:
    """``"32x32x3"`` → ``(32, 32, 3)``; a single ``"D"`` → ``(D,)`` (a flat input)."""
    m = re.fullmatch(rf"\s*(\d+){_SEP}(\d+){_SEP}(\d+)\s*|\s*(\d+)\s*", text)
    if m is None or any(int(g) < 1 for g in m.groups() if g is not None):
        raise ConfigError(f"Option {option} must be HxWxC with positive sizes, such as 224x224x3 (or D); "
                          f"received {text!r}.")
    return tuple(int(g) for g in m.groups() if g is not None)


def parse_hw(text: str, *, option: str = "--image-size") -> tuple[int, int]:
    """``"64x48"`` → ``(64, 48)``."""
    m = re.fullmatch(rf"\s*(\d+){_SEP}(\d+)\s*", text)
    if m is None or any(int(g) < 1 for g in m.groups()):
        raise ConfigError(f"Option {option} must be HxW with positive sizes, such as 64x64; received {text!r}.")
    return int(m.group(1)), int(m.group(2))


def parse_pair(text: str, *, option: str, minimum: int = 1) -> int | tuple[int, int]:
    """``"3"`` → ``3``; ``"3x2"`` → ``(3, 2)`` (height, width); every size at least ``minimum``."""
    m = re.fullmatch(rf"\s*(\d+)(?:{_SEP}(\d+))?\s*", str(text))
    if m is None or any(int(g) < minimum for g in m.groups() if g is not None):
        sizes = "positive sizes" if minimum == 1 else "non-negative sizes" if minimum == 0 else f"sizes of at least {minimum}"
        raise ConfigError(f"Option {option} must be N or HxW with {sizes}, such as 3 or 3x2; received {text!r}.")
    h, w = m.groups()
    return int(h) if w is None else (int(h), int(w))
