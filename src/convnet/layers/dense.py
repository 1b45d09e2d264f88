"""``Dense`` (the FC layer) and ``Flatten``."""
from __future__ import annotations

import math

from ..errors import ConfigError
from ..ops.dense import check_scale, dense_backward, dense_forward
from ..ops.geometry import is_int
from ..ops.reshape import flatten_backward, flatten_forward
from .accounting import GLOBAL, Footprint, LayerCost, elementwise_cost
from .base import Layer, array_module, check_init, default_rng, init_weights
from .spelling import Spelling, not_writable


class Flatten(Layer):
    """``(N, H, W, C) → (N, H·W·C)`` in NHWC order (a view; no copy when contiguous)."""

    kind = "FLATTEN"
    name_prefix = "flatten"
    spatially_agnostic = False
    pattern_words = ("FLATTEN",)

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """No arithmetic: a reshape."""
        return elementwise_cost(output_shape, 0, 0)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps the input's shape only; the output is a view of the input, and ``dx`` one of ``dy``."""
        return Footprint(output_is_view=True, dx_is_dy=True)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        y, cache = flatten_forward(x)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return flatten_backward(dy, self._take_cache())


class Dense(Layer):
    """A fully connected layer: ``y = flatten(x) @ w + b``.

    ``Dense(units, *, use_bias=True, alpha=1.0, beta=1.0, init="he")``.  Any per-sample input
    shape is flattened first in NHWC order (as Caffe's InnerProduct does), so
    ``w`` has shape ``(H·W·C, units)`` and can be reshaped to a ``(H, W, C, units)``
    convolution kernel (the notes' FC→CONV conversion).  Output ``(N, units)``.
    ``alpha`` and ``beta`` scale the product and the bias, ``y = alpha·x @ w + beta·b`` (ONNX Gemm;
    the pattern language writes only the default 1, 1).
    """

    kind = "FC"
    name_prefix = "fc"
    output_private = True
    grad_private = True
    can_skip_dx = True
    spatially_agnostic = False
    pattern_words = ("FC",)
    pattern_options = ("NOBIAS",)
    pattern_arg = True

    def __init__(self, units, *, use_bias=True, alpha=1.0, beta=1.0, init="he", name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not is_int(units) or units < 1:
            raise ConfigError(f"Argument `units` must be a positive integer; received units={units!r}.")
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.alpha, self.beta = check_scale(alpha, "alpha"), check_scale(beta, "beta")
        self.init = check_init(init)

    def output_shape(self, input_shape):
        return (self.units,)

    def build(self, input_shape, *, rng=None, xp=None):
        super().build(input_shape)
        rng, xp = default_rng(rng), array_module(xp)
        d = math.prod(input_shape)
        self.params = {"w": xp.asarray(init_weights(self.init, rng, (d, self.units), d, self.units, self.dtype))}
        if self.use_bias:
            self.params["b"] = xp.zeros(self.units, dtype=self.dtype)
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Weights ``D·U`` and ``U`` biases; ``D·U`` MACs; FLOPs forward ``2·macs`` (+ ``U``),
        backward ``4·macs`` (+ ``U``), each + ``U`` per scale that is not 1; a window over the
        whole input when it is an image."""
        d, u = math.prod(input_shapes[0]), self.units
        macs = d * u
        bias = u if self.use_bias else 0
        scales = u * ((self.alpha != 1.0) + (self.use_bias and self.beta != 1.0))
        return LayerCost(d * u, bias, macs, 2 * macs + bias + scales, 4 * macs + bias + scales,
                         GLOBAL if len(input_shapes[0]) == 3 else None)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to its input; no scratch."""
        return Footprint(keeps_input=train)

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``FC-N`` with ``/NOBIAS``."""
        if s.arg is None or not s.arg.isdigit() or int(s.arg) < 1:
            raise s.fail(f"{s.head!r} gives no number of units", "FC-<N>, e.g. FC-4096")
        return {"units": int(s.arg), "use_bias": "NOBIAS" not in s.options}

    def to_pattern(self) -> str:
        if (self.alpha, self.beta) != (1.0, 1.0):
            raise not_writable(self.label, f"has alpha={self.alpha:g}, beta={self.beta:g}, which FC cannot write")
        return f"FC-{self.units}" + ("" if self.use_bias else "/NOBIAS")

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        y, cache = dense_forward(x.reshape(x.shape[0], -1), self.params["w"], self.params.get("b"), alpha=self.alpha,
                                 beta=self.beta)
        self._cache = (cache, x.shape) if keep_cache else None
        return y

    def backward(self, dy, *, need_dx=True):
        cache, x_shape = self._take_cache()
        dx, dw, db = dense_backward(dy, cache, need_dx=need_dx)
        self.grads["w"] = dw
        if self.use_bias:
            self.grads["b"] = db
        return None if dx is None else dx.reshape(x_shape)
