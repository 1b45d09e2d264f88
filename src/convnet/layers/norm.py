"""Normalization layers: ``LRN`` (AlexNet) and ``BatchNorm``."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..ops.norm import (
    batch_norm_backward,
    batch_norm_forward,
    check_lrn_args,
    local_response_norm_backward,
    local_response_norm_forward,
)
from .base import Layer


class LRN(Layer):
    """Local response normalization across channels (AlexNet, cuda-convnet).

    ``LRN(*, size=5, alpha=1e-4, beta=0.75, k=2.0)``; ``y = x / (k + alpha/size · Σ x²)^beta``
    over ``size`` neighbouring channels.  Shape unchanged; no parameters.
    """

    kind = "LRN"

    def __init__(self, *, size=5, alpha=1e-4, beta=0.75, k=2.0, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        check_lrn_args(size, alpha, beta, k)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        return tuple(input_shape)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = local_response_norm_forward(x, size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return local_response_norm_backward(dy, self._take_cache())


class BatchNorm(Layer):
    """Batch normalization over every axis but the channels (last).

    ``BatchNorm(*, momentum=0.1, eps=1e-5)``.  Parameters ``gamma`` (ones) and
    ``beta`` (zeros), shape ``(C,)``; state ``running_mean`` and ``running_var``
    updated in training as PyTorch does::

        running = (1 - momentum) · running + momentum · batch_statistic

    with the *unbiased* batch variance; ``forward(train=False)`` uses them.
    """

    kind = "BN"
    output_private = True
    grad_private = True

    def __init__(self, *, momentum=0.1, eps=1e-5, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"Argument `momentum` must be a number in [0, 1]; received {momentum!r}.")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
            raise ConfigError(f"Argument `eps` must be a positive number; received {eps!r}.")
        self.momentum, self.eps = float(momentum), float(eps)

    def output_shape(self, input_shape):
        if len(input_shape) not in (1, 3):
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C) or (D,); received shape {tuple(input_shape)}.")
        return tuple(input_shape)

    def build(self, input_shape, *, rng=None):
        super().build(input_shape)
        c = input_shape[-1]
        self.params = {"gamma": np.ones(c, dtype=self.dtype), "beta": np.zeros(c, dtype=self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = {"running_mean": np.zeros(c, dtype=self.dtype), "running_var": np.ones(c, dtype=self.dtype)}

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        if x.ndim not in (2, 4):
            raise ShapeError(f"{self.label}: input `x` must be (N, H, W, C) or (N, D); received shape {tuple(x.shape)}.")
        y, cache = batch_norm_forward(
            x, self.params["gamma"], self.params["beta"], train=train,
            running_mean=self.state["running_mean"], running_var=self.state["running_var"], eps=self.eps,
        )
        if train:
            m = self.momentum
            unbiased = cache.var * (cache.count / (cache.count - 1))
            self.state["running_mean"] = ((1 - m) * self.state["running_mean"] + m * cache.mean).astype(self.dtype)
            self.state["running_var"] = ((1 - m) * self.state["running_var"] + m * unbiased).astype(self.dtype)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        dx, dgamma, dbeta = batch_norm_backward(dy, self._take_cache())
        self.grads["gamma"], self.grads["beta"] = dgamma, dbeta
        return dx
