"""The exceptions convnet raises on bad input.

Every error is a :class:`ConvNetError` and also a built-in exception class
(``ValueError`` or ``TypeError``), so code that already catches those keeps
working.  Messages are one sentence that names the argument, what was received
and what was expected (and the input shape when there is one).

Exit codes used by the command line (see ``convnet --help``) are attached to
the classes as ``exit_code``.
"""
from __future__ import annotations


class ConvNetError(Exception):
    """Base class of every error convnet raises on purpose."""

    exit_code = 2


class ShapeError(ConvNetError, ValueError):
    """An array has the wrong rank, size or channel count."""


class GeometryError(ConvNetError, ValueError):
    """A kernel / stride / padding combination does not tile the input."""


class ConfigError(ConvNetError, ValueError):
    """A hyperparameter has an invalid value (non-positive size, unknown name...)."""


class DTypeError(ConvNetError, TypeError):
    """An array has an unsupported dtype (integers, objects, ...)."""


class PatternSyntaxError(ConvNetError, ValueError):
    """An architecture pattern string could not be parsed."""


class DataFormatError(ConvNetError, ValueError):
    """A data or weight file is malformed, truncated or inconsistent."""

    exit_code = 3


class SecurityError(ConvNetError, ValueError):
    """A file tried to do something unsafe (run code, escape its folder...)."""

    exit_code = 4


class BudgetError(ConvNetError, ValueError):
    """The requested work would not fit in the memory budget."""

    exit_code = 5


class NonFiniteError(ConvNetError, ValueError):
    """A loss, gradient or parameter became NaN or infinite."""

    exit_code = 6


class CheckpointError(ConvNetError, ValueError):
    """A checkpoint cannot be used (missing, corrupt, or from another configuration)."""

    exit_code = 7


def describe(value) -> str:
    """A short description of ``value`` for error messages (shape and dtype of arrays)."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"an array of shape {tuple(shape)} and dtype {dtype}"
    return repr(value)
