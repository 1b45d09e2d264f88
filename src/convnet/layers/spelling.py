"""How a layer is written in the pattern language: the parts the parser hands a layer class.

Every layer in a pattern is one token of the form ``WORD [F] ["-" ARG] ("/" OPTION)*``::

    CONV3x5-64/S2/NOBIAS    word CONV, size (3, 5), argument "64", options S=(2, 2), NOBIAS
    POOL3/S2                word POOL, size (3, 3), option S=(2, 2)
    FC-10, DROPOUT-0.25     word FC / DROPOUT, argument "10" / "0.25"
    RELU, LRELU-0.2         a word alone, or with an argument

:mod:`convnet.pattern` finds the layer class by its word (``cls.pattern_words``), checks the
options against ``cls.pattern_options`` (each at most once, none contradicting another) and
hands the class a :class:`Spelling`; ``cls.pattern_args(spelling)`` returns the constructor's
keyword arguments, and ``layer.to_pattern()`` writes the layer back.  The helpers below are
shared by the layers' ``to_pattern``.  This module imports nothing but :mod:`convnet.errors`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ConfigError

#: the options of the language, in the order an error message lists them, and how it names them
OPTIONS = {"S": "/S<stride>", "P": "/P<padding>", "SAME": "/SAME", "G": "/G<groups>", "D": "/D<dilation>",
           "NOBIAS": "/NOBIAS", "FLOOR": "/FLOOR", "CEIL": "/CEIL"}


@dataclass(frozen=True)
class Spelling:
    """One layer token of a pattern, split by the parser (see the module docstring).

    ``options`` maps each option given to its value: ``(h, w)`` for S, P, G and D (``G2`` is
    ``(2, 2)``), True for the flags.  ``fail(message, expected, at_arg=False)`` returns the
    :class:`~convnet.errors.PatternSyntaxError` to raise, its caret under the token (or under
    its argument, or where the argument should be, with ``at_arg=True``).
    """

    text: str  # the whole token as written ("conv3-64/s2")
    head: str  # the token before its options, as written ("conv3-64")
    word: str  # the layer's word, upper case ("CONV")
    size: tuple[int, int] | None = None
    arg: str | None = None
    options: dict = field(default_factory=dict)
    fail: Callable[..., Exception] = field(default=None, repr=False, compare=False)

    def fit(self) -> str:
        """``fit`` from ``/FLOOR`` (crop) or ``/CEIL`` (pad); "error" without either."""
        return "crop" if "FLOOR" in self.options else "pad" if "CEIL" in self.options else "error"


def hw(v) -> str:
    """``(3, 3) -> "3"``, ``(3, 5) -> "3x5"`` (an int is both)."""
    v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


def symmetric_pads(padding, label: str) -> tuple[int, int]:
    """``((t, b), (l, r))`` with ``t == b`` and ``l == r`` → ``(t, l)``; else a ConfigError."""
    (t, b), (l, r) = padding
    if t != b or l != r:
        raise ConfigError(f"to_pattern: {label} has asymmetric padding {padding}, which the pattern language cannot write.")
    return (t, l)


def fit_suffix(fit: str) -> str:
    """``"crop" -> "/FLOOR"``, ``"pad" -> "/CEIL"``, ``"error" -> ""``."""
    return {"crop": "/FLOOR", "pad": "/CEIL"}.get(fit, "")


def not_writable(label: str, why: str) -> ConfigError:
    """The error of ``to_pattern`` for a layer the language cannot write."""
    return ConfigError(f"to_pattern: {label} {why}.")


def filters_and_size(s: Spelling, example: str) -> tuple[int, tuple[int, int]]:
    """``(K, (kh, kw))`` of a ``WORD[F]-K`` spelling (F defaults to 3); ``example`` shows the form."""
    f = s.size or (3, 3)
    k = s.arg
    if k is None or not k.isdigit() or int(k) < 1:
        raise s.fail(f"{s.head!r} gives {'nothing' if not k else repr(k)} as its number of filters", example,
                     at_arg=True)
    if min(f) < 1:
        raise s.fail(f"{s.text!r} has a zero filter size", "F >= 1")
    return int(k), f
