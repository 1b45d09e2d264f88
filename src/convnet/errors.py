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
    """A kernel / stride / padding combination does not tile the input.

    When the windows do not fit evenly (not when the filter is larger than the input) the
    error also carries what its advice is made of, so that a caller can give that advice in
    its own words (the pattern language's ``/FLOOR`` and ``/CEIL`` instead of ``fit=``):
    ``reason`` (the message up to the advice), ``layer``, ``axis`` ("height" or "width"),
    ``dropped`` (rows a floor leaves unread), ``padded`` (zero rows a ceil adds) and
    ``side`` ("bottom" or "right").  They are None otherwise.
    """

    def __init__(self, message: str = "", *, reason: str | None = None, layer: str | None = None,
                 axis: str | None = None, dropped: int | None = None, padded: int | None = None,
                 side: str | None = None):
        super().__init__(message)
        self.reason, self.layer, self.axis = reason, layer, axis
        self.dropped, self.padded, self.side = dropped, padded, side


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


class PathError(ConvNetError, ValueError):
    """A path cannot be used: a missing folder, a file where a folder is expected (or the
    reverse), no permission, a full disk, or an output that would replace an earlier run."""

    exit_code = 8


class DistributedError(ConvNetError, ValueError):
    """The ranks of a data-parallel job disagree (configuration, data, shapes), or a rank
    stopped answering (the collective timeout)."""

    exit_code = 10


#: exit status of a check that ran and failed (``convnet gradcheck``): not an error of input
CHECK_FAILED_EXIT = 9


def describe(value) -> str:
    """A short description of ``value`` for error messages (shape and dtype of arrays)."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"an array of shape {tuple(shape)} and dtype {dtype}"
    return repr(value)
