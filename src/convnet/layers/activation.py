"""``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Clip`` (``ReLU6``), ``Identity`` and ``Dropout``:
shape-preserving, parameter-free layers."""
from __future__ import annotations

import math

import numpy as np

from ..ops import kernels
from ..ops.activations import (
    check_clip_bounds,
    check_negative_slope,
    check_rate,
    clip,
    clip_backward,
    clip_forward,
    dropout_backward,
    dropout_forward,
    identity_backward,
    identity_forward,
    leaky_relu,
    leaky_relu_backward,
    leaky_relu_forward,
    relu,
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
)
from .accounting import Footprint, LayerCost, elementwise_cost
from .base import Layer
from .spelling import Spelling


class ReLU(Layer):
    """``max(0, x)`` elementwise; the notes' RELU layer (no hyperparameters)."""

    kind = "RELU"
    name_prefix = "relu"
    inplace = True
    grad_private = True
    pointwise = True
    is_relu = True
    pattern_words = ("RELU",)

    def forward(self, x, *, train=False, keep_cache=True, inplace=False):
        """``inplace=True``: write the result into ``x`` (the net passes it when no one else reads
        ``x``: the BN or ADD output before a ReLU, as PyTorch's ``ReLU(inplace=True)``)."""
        self._check_input(x)
        if not keep_cache:
            self._cache = None
            return relu(x, inplace=inplace)
        y, self._cache = relu_forward(x, inplace=inplace)
        return y

    def backward(self, dy, *, inplace=False):
        """``inplace=True``: the gradient is written into ``dy`` (the net passes it when no one
        else holds ``dy``)."""
        return relu_backward(dy, self._take_cache(), inplace=inplace)

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """One FLOP per value forward (the max), one backward (the select)."""
        return elementwise_cost(output_shape, 1, 1)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to its output; NumPy's backward makes a bool mask (the compiled one none)."""
        return Footprint(keeps_output=train,
                         backward_scratch=0 if kernels.enabled() else batch * math.prod(output_shape))


class LeakyReLU(Layer):
    """``x`` where ``x > 0``, else ``negative_slope·x`` (PyTorch's ``nn.LeakyReLU``, Keras's ``LeakyReLU``).

    ``LeakyReLU(negative_slope=0.01)`` with ``negative_slope >= 0`` (as Keras; the output then
    has the sign of the input, so the cache is the output alone and the layer works in place
    like :class:`ReLU`).  Shape unchanged; no parameters.  Pattern: ``LRELU`` (slope 0.01) or
    ``LRELU-0.2``.

    >>> LeakyReLU(0.2).forward(np.array([[-1.0, 2.0]])).tolist()
    [[-0.2, 2.0]]
    """

    kind = "LRELU"
    name_prefix = "lrelu"
    inplace = True
    grad_private = True
    pointwise = True
    pattern_words = ("LRELU", "LEAKYRELU")
    pattern_arg = True

    def __init__(self, negative_slope=0.01, *, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.negative_slope = check_negative_slope(negative_slope)

    def forward(self, x, *, train=False, keep_cache=True, inplace=False):
        """``inplace=True``: write the result into ``x`` (the net passes it when no one else reads ``x``)."""
        self._check_input(x)
        if not keep_cache:
            self._cache = None
            return leaky_relu(x, negative_slope=self.negative_slope, inplace=inplace)
        y, self._cache = leaky_relu_forward(x, negative_slope=self.negative_slope, inplace=inplace)
        return y

    def backward(self, dy, *, inplace=False):
        """``inplace=True``: the gradient is written into ``dy`` (the net passes it when no one else holds ``dy``)."""
        return leaky_relu_backward(dy, self._take_cache(), inplace=inplace)

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Two FLOPs per value forward (the test and the multiply), two backward."""
        return elementwise_cost(output_shape, 2, 2)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to its output.  Forward: a bool mask and the negative values gathered
        (about half); backward: two bool masks and the gathered values."""
        n = batch * math.prod(output_shape)
        return Footprint(keeps_output=train, forward_scratch=n + n * itemsize // 2,
                         backward_scratch=2 * n + n * itemsize // 2)

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``LRELU`` (slope 0.01) or ``LRELU-a`` with ``a >= 0``."""
        if not s.arg:
            return {}
        try:
            return {"negative_slope": check_negative_slope(float(s.arg))}
        except ValueError:  # not a number, or refused (ConfigError is a ValueError)
            raise s.fail(f"{s.text!r} has no valid slope", "LRELU-a with a >= 0, e.g. LRELU-0.2") from None

    def to_pattern(self) -> str:
        return "LRELU" if self.negative_slope == 0.01 else f"LRELU-{self.negative_slope!r}"


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))`` elementwise (the logistic function; ONNX Sigmoid, ``torch.sigmoid``).

    No hyperparameters, no parameters; shape unchanged.  Pattern: ``SIGMOID``.

    >>> Sigmoid().forward(np.array([[0.0, 1000.0, -1000.0]])).tolist()
    [[0.5, 1.0, 0.0]]
    """

    kind = "SIGMOID"
    name_prefix = "sigmoid"
    grad_private = True
    pointwise = True
    pattern_words = ("SIGMOID",)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        if not keep_cache:
            self._cache = None
            return sigmoid(x)
        y, self._cache = sigmoid_forward(x)
        return y

    def backward(self, dy):
        return sigmoid_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Four FLOPs per value forward (|x|, exp, add, divide), three backward (``dy·y·(1-y)``)."""
        return elementwise_cost(output_shape, 4, 3)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to its output; forward makes ``exp(-|x|)``, ``1/(1+e)`` and the select's
        operands (about three activations), backward two."""
        a = batch * math.prod(output_shape) * itemsize
        return Footprint(keeps_output=train, forward_scratch=3 * a, backward_scratch=2 * a)


class Clip(Layer):
    """``min(max(x, min), max)`` elementwise (ONNX Clip, ``torch.clamp``); a bound of None is no bound.

    ``Clip(min=None, max=None, *, inclusive=True)``.  The gradient passes inside ``[min, max]`` and
    is 0 outside; at a bound it passes with ``inclusive=True`` (``torch.clamp``'s backward) and not
    with ``inclusive=False`` (``torch.nn.Hardtanh``/``ReLU6``).  Shape unchanged; no parameters.
    The cache is a bool mask.  No pattern spelling (ReLU6 has one: ``RELU6``).

    >>> Clip(-1, 1).forward(np.array([[-3.0, 0.5, 2.0]])).tolist()
    [[-1.0, 0.5, 1.0]]
    """

    kind = "CLIP"
    name_prefix = "clip"
    grad_private = True
    pointwise = True

    def __init__(self, min=None, max=None, *, inclusive=True, name=None, dtype=None):  # noqa: A002
        super().__init__(name=name, dtype=dtype)
        self.min, self.max = check_clip_bounds(min, max)
        self.inclusive = bool(inclusive)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        if not keep_cache:
            self._cache = None
            return clip(x, min=self.min, max=self.max)
        y, self._cache = clip_forward(x, min=self.min, max=self.max, inclusive=self.inclusive)
        return y

    def backward(self, dy):
        return clip_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Two comparisons per value forward, one select backward."""
        return elementwise_cost(output_shape, 2, 1)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Training: a bool mask kept (one byte per value); forward two masks more, backward none."""
        e = batch * math.prod(output_shape)
        return Footprint(cache_bytes=e if train else 0, forward_scratch=2 * e)


class ReLU6(Clip):
    """``min(max(x, 0), 6)`` (MobileNet's activation; ``torch.nn.ReLU6``): a :class:`Clip` whose
    gradient is 0 at 0 and at 6, as PyTorch's and as convnet's ReLU at 0.  Pattern: ``RELU6``."""

    kind = "RELU6"
    name_prefix = "relu6_"
    pattern_words = ("RELU6",)

    def __init__(self, *, name=None, dtype=None):
        super().__init__(0.0, 6.0, inclusive=False, name=name, dtype=dtype)


class Identity(Layer):
    """``y = x``: the input itself, not a copy (ONNX Identity); backward hands ``dy`` back.
    Pattern: ``IDENTITY``."""

    kind = "IDENTITY"
    name_prefix = "identity"
    pointwise = True
    pattern_words = ("IDENTITY",)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        y, _ = identity_forward(x)
        self._cache = True if keep_cache else None
        return y

    def backward(self, dy):
        self._take_cache()
        return identity_backward(dy)

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """No arithmetic."""
        return elementwise_cost(output_shape, 0, 0)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps nothing; the output is the input, and ``dx`` is ``dy``."""
        return Footprint(output_is_view=True, dx_is_dy=True)


class Dropout(Layer):
    """Inverted dropout: ``Dropout(rate=0.5, *, seed=0)``; the identity at inference.

    The mask comes from the layer's own ``numpy.random.Generator`` seeded with
    ``seed``; save and restore ``layer.rng.bit_generator.state`` to resume exactly.
    """

    kind = "DROPOUT"
    name_prefix = "drop"
    pointwise = True
    pattern_words = ("DROPOUT",)
    pattern_arg = True

    def __init__(self, rate=0.5, *, seed=0, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.rate = check_rate(rate)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        y, cache = dropout_forward(x, rate=self.rate, rng=self.rng, train=train)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return dropout_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Two FLOPs per value forward (mask and scale), one backward."""
        return elementwise_cost(output_shape, 2, 1)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Training: a bool mask (1 byte per value) kept; forward draws float64 uniforms.
        Inference (or rate 0): the output is the input, and ``dx`` is ``dy``."""
        e = batch * math.prod(output_shape)
        if not train or self.rate == 0:
            return Footprint(output_is_view=True, dx_is_dy=True)
        return Footprint(cache_bytes=e, forward_scratch=8 * e + e * itemsize, backward_scratch=e * itemsize)

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``DROPOUT`` (rate 0.5) or ``DROPOUT-r`` with ``0 <= r < 1``."""
        rate = 0.5
        if s.arg:
            try:
                rate = float(s.arg)
            except ValueError:
                rate = -1.0
            if not 0.0 <= rate < 1.0:
                raise s.fail(f"{s.text!r} has no valid rate", "DROPOUT-r with 0 <= r < 1, e.g. DROPOUT-0.5")
        return {"rate": rate}

    def to_pattern(self) -> str:
        return "DROPOUT" if self.rate == 0.5 else f"DROPOUT-{self.rate:g}"
