"""``Dense`` (the FC layer) and ``Flatten``."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..ops.dense import dense_backward, dense_forward
from ..ops.geometry import is_int
from .base import Layer, check_init, default_rng, init_weights


class Flatten(Layer):
    """``(N, H, W, C) → (N, H·W·C)`` in NHWC order (a view; no copy when contiguous)."""

    kind = "FLATTEN"
    spatially_agnostic = False

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        self._cache = x.shape if keep_cache else None
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._take_cache())


class Dense(Layer):
    """A fully connected layer: ``y = flatten(x) @ w + b``.

    ``Dense(units, *, use_bias=True, init="he")``.  Any per-sample input shape is
    flattened first in NHWC order (as Caffe's InnerProduct does), so
    ``w`` has shape ``(H·W·C, units)`` and can be reshaped to a ``(H, W, C, units)``
    convolution kernel (the notes' FC→CONV conversion).  Output ``(N, units)``.
    """

    kind = "FC"
    output_private = True
    grad_private = True
    can_skip_dx = True
    spatially_agnostic = False

    def __init__(self, units, *, use_bias=True, init="he", name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not is_int(units) or units < 1:
            raise ConfigError(f"Argument `units` must be a positive integer; received units={units!r}.")
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.init = check_init(init)

    def output_shape(self, input_shape):
        return (self.units,)

    def build(self, input_shape, *, rng=None):
        super().build(input_shape)
        rng = default_rng(rng)
        d = math.prod(input_shape)
        self.params = {"w": init_weights(self.init, rng, (d, self.units), d, self.units, self.dtype)}
        if self.use_bias:
            self.params["b"] = np.zeros(self.units, dtype=self.dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        y, cache = dense_forward(x.reshape(x.shape[0], -1), self.params["w"], self.params.get("b"))
        self._cache = (cache, x.shape) if keep_cache else None
        return y

    def backward(self, dy, *, need_dx=True):
        cache, x_shape = self._take_cache()
        dx, dw, db = dense_backward(dy, cache, need_dx=need_dx)
        self.grads["w"] = dw
        if self.use_bias:
            self.grads["b"] = db
        return None if dx is None else dx.reshape(x_shape)
