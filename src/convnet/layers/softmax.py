"""``Softmax`` and ``LogSoftmax`` as layers (over any axis; the loss head is something else).

In the pattern language a bare ``SOFTMAX`` at the end of a net is the *loss* — the net outputs
logits and the trainer applies softmax cross-entropy (``net.head == "softmax"``).  A softmax
*layer*, whose output is the probabilities, is written with the axes it normalises over, as
letters of ``H``, ``W``, ``C``: ``SOFTMAX-C`` (over the channels, ``axis=-1``; also ``PROB``),
``SOFTMAX-HW`` (each channel's map); ``LOGSOFTMAX`` (over the channels) or ``LOGSOFTMAX-HW``.
"""
from __future__ import annotations

import math

from ..errors import ConfigError, ShapeError
from ..ops.geometry import is_int
from ..ops.softmax import (
    log_softmax,
    log_softmax_backward,
    log_softmax_forward,
    normalize_axes,
    softmax,
    softmax_backward,
    softmax_forward,
)
from .accounting import Footprint, LayerCost, elementwise_cost
from .base import Layer
from .spelling import Spelling, not_writable

#: the letters of the pattern language's axes and the (negative) axes they name
_LETTERS = {"H": -3, "W": -2, "C": -1}


def _check_axis(axis, label: str):
    """``axis`` as given (an int or a tuple of ints), refused when it names the batch axis 0."""
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not axes or not all(is_int(a) for a in axes) or len(set(axes)) != len(axes):
        raise ConfigError(f"Argument `axis` must be an int or a tuple of distinct ints; received axis={axis!r}.")
    if 0 in axes:
        raise ConfigError(f"{label}: `axis` 0 is the batch axis; normalise over per-sample axes (-1: the channels "
                          f"of NHWC); received axis={axis!r}.")
    return tuple(int(a) for a in axes) if isinstance(axis, (tuple, list)) else int(axis)


class _SoftmaxBase(Layer):
    pointwise = False
    grad_private = True
    pattern_arg = True

    def __init__(self, axis=-1, *, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.axis = _check_axis(axis, type(self).__name__)

    def _axes(self, rank: int) -> tuple[int, ...]:
        """The normalised axes of a batch of rank ``rank``; ShapeError when one is out of range or the batch axis."""
        axes = normalize_axes(self.axis, rank, self.label)
        if 0 in axes:
            raise ShapeError(f"{self.label}: axis {self.axis!r} is the batch axis of an input of rank {rank}; "
                             f"expected per-sample axes.")
        return axes

    def output_shape(self, input_shape):
        self._axes(len(input_shape) + 1)
        return tuple(input_shape)

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Five FLOPs per value forward (max, subtract, exp, sum, divide), four backward."""
        return elementwise_cost(output_shape, 5, 4)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to its output; forward makes the shifted input, backward ``dy·y`` then
        ``dy - Σ`` (one activation at a time)."""
        a = batch * math.prod(output_shape) * itemsize
        return Footprint(keeps_output=train, forward_scratch=a, backward_scratch=a)

    @classmethod
    def _axis_of(cls, s: Spelling, default):
        letters = s.arg
        if not letters:
            if default is None:
                raise s.fail(f"{s.text!r} names no axis", f"{cls.pattern_words[0]}-C (over the channels) or -H, -W, "
                                                          f"-HW, -HWC...", at_arg=True)
            return default
        if any(ch not in _LETTERS for ch in letters) or len(set(letters)) != len(letters):
            raise s.fail(f"{s.text!r} has no valid axes", "letters of H, W and C, e.g. -C or -HW", at_arg=True)
        axes = sorted(_LETTERS[ch] for ch in letters)
        return axes[0] if len(axes) == 1 else tuple(axes)

    def _letters(self) -> str:
        """The axes as letters (``-1 -> "C"``); ConfigError when the language cannot write them."""
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        if self.built:  # positive axes of a built layer are known
            axes = tuple(a - (len(self.input_shape) + 1) if a > 0 else a for a in axes)
        names = {v: k for k, v in _LETTERS.items()}
        if not all(a in names for a in axes):
            raise not_writable(self.label, f"normalises over axis {self.axis!r}, which is not H, W or C of an image "
                                           f"(or the last axis)")
        return "".join(names[a] for a in sorted(axes))


class Softmax(_SoftmaxBase):
    """``exp(x - max) / Σ exp(x - max)`` over ``axis`` (ONNX Softmax, ``torch.softmax``).

    ``Softmax(axis=-1)`` — an axis of the batch ``(N, H, W, C)`` (or ``(N, D)``): -1 the channels,
    1 or -3 the height, 2 or -2 the width; a tuple normalises over several at once (ONNX Softmax
    before opset 13 over the trailing axes).  Shape unchanged; no parameters; the cache is the
    output.  Kind ``PROB`` (``SOFTMAX`` is the loss head's word); pattern ``SOFTMAX-C`` or ``PROB``.

    >>> Softmax().forward(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """

    kind = "PROB"
    name_prefix = "softmax"
    pattern_words = ("SOFTMAX", "PROB")

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        self._axes(x.ndim)
        if not keep_cache:
            self._cache = None
            return softmax(x, axis=self.axis)
        y, self._cache = softmax_forward(x, axis=self.axis)
        return y

    def backward(self, dy):
        return softmax_backward(dy, self._take_cache())

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``SOFTMAX-C`` (the axes as letters of H, W, C; bare ``SOFTMAX`` is the loss head) or ``PROB``
        (over the channels)."""
        return {"axis": cls._axis_of(s, None if s.word == "SOFTMAX" else -1)}

    def to_pattern(self) -> str:
        return f"SOFTMAX-{self._letters()}"


class LogSoftmax(_SoftmaxBase):
    """``(x - max) - log Σ exp(x - max)`` over ``axis`` (ONNX LogSoftmax, ``torch.log_softmax``).

    ``LogSoftmax(axis=-1)``, axes as :class:`Softmax`'s.  Shape unchanged; no parameters; the cache
    is the output.  Pattern: ``LOGSOFTMAX`` (over the channels) or ``LOGSOFTMAX-HW``.
    """

    kind = "LOGSOFTMAX"
    name_prefix = "logsoftmax"
    pattern_words = ("LOGSOFTMAX",)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        self._axes(x.ndim)
        if not keep_cache:
            self._cache = None
            return log_softmax(x, axis=self.axis)
        y, self._cache = log_softmax_forward(x, axis=self.axis)
        return y

    def backward(self, dy):
        return log_softmax_backward(dy, self._take_cache())

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``LOGSOFTMAX`` (over the channels) or ``LOGSOFTMAX-<axes>`` (letters of H, W, C)."""
        return {"axis": cls._axis_of(s, -1)}

    def to_pattern(self) -> str:
        letters = self._letters()
        return "LOGSOFTMAX" if letters == "C" else f"LOGSOFTMAX-{letters}"
