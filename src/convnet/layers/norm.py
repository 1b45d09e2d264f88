"""Normalization layers: ``LRN`` (AlexNet), ``BatchNorm``, and ``ChannelAffine`` (batch norm's
inference form, ``x · scale + shift`` per channel)."""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from ..ops import kernels
from ..ops.norm import (
    batch_norm_backward,
    batch_norm_forward,
    channel_affine_backward,
    channel_affine_forward,
    check_lrn_args,
    local_response_norm_backward,
    local_response_norm_forward,
)
from .accounting import Footprint, LayerCost, elementwise_cost
from .base import Layer, array_module
from .spelling import not_writable


class LRN(Layer):
    """Local response normalization across channels (AlexNet, cuda-convnet).

    ``LRN(*, size=5, alpha=1e-4, beta=0.75, k=2.0)``; ``y = x / (k + alpha/size · Σ x²)^beta``
    over ``size`` neighbouring channels.  Shape unchanged; no parameters.
    """

    kind = "LRN"
    name_prefix = "norm"
    pattern_words = ("LRN", "NORM")

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

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``(size + 4)`` FLOPs per value forward (the window's squares and sum, the scale, its
        power, the divide), twice that backward."""
        return elementwise_cost(output_shape, self.size + 4, 2 * (self.size + 4))

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to ``x`` and owns the scale ``s`` (one activation); forward makes
        ``x²``, backward about four activations of temporaries."""
        a = batch * math.prod(output_shape) * itemsize
        return Footprint(keeps_input=train, cache_bytes=a if train else 0, forward_scratch=a if train else 2 * a,
                         backward_scratch=4 * a)

    def to_pattern(self) -> str:
        """``LRN`` — AlexNet's constants only (n=5, α=1e-4, β=0.75, k=2)."""
        if (self.size, self.alpha, self.beta, self.k) != (5, 1e-4, 0.75, 2.0):
            raise not_writable(self.label, "has non-default constants, which LRN cannot write")
        return "LRN"


class BatchNorm(Layer):
    """Batch normalization over every axis but the channels (last).

    ``BatchNorm(*, momentum=0.1, eps=1e-5)``.  Parameters ``gamma`` (ones) and
    ``beta`` (zeros), shape ``(C,)``; state ``running_mean`` and ``running_var``
    updated in training as PyTorch does::

        running = (1 - momentum) · running + momentum · batch_statistic

    with the *unbiased* batch variance; ``forward(train=False)`` uses them.

    ``stats_reduce``: None, or a callable summing a float64 array over the processes of a
    data-parallel job (set by :func:`convnet.distributed.sync_batchnorm`): the batch statistics
    and the backward sums are then those of the global batch.
    """

    #: sums over the ranks of a data-parallel job (synchronised batch norm), or None
    stats_reduce = None

    kind = "BN"
    name_prefix = "bn"
    output_private = True
    grad_private = True
    pointwise = True
    affine_at_inference = True
    applies_relu = True
    pattern_words = ("BN", "BATCHNORM")

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

    def build(self, input_shape, *, rng=None, xp=None):
        super().build(input_shape)
        xp = array_module(xp)
        c = input_shape[-1]
        self.params = {"gamma": xp.ones(c, dtype=self.dtype), "beta": xp.zeros(c, dtype=self.dtype)}
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}
        self.state = {"running_mean": xp.zeros(c, dtype=self.dtype), "running_var": xp.ones(c, dtype=self.dtype)}

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``C`` weights (γ) and ``C`` biases (β); 7 FLOPs per value forward, 9 backward."""
        c, n = input_shapes[0][-1], math.prod(output_shape)
        return LayerCost(c, c, 0, 7 * n, 9 * n)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to ``x`` (x̂ is recomputed); NumPy makes one activation of
        temporaries forward (the variance's) and one backward (``x · b``), and one more backward
        where it runs the ReLU after it (the masked gradient: counted always, as the footprint
        does not see the graph); the compiled passes (ops/kernels/norm.py) none."""
        a = 0 if kernels.enabled() else batch * math.prod(output_shape) * itemsize
        return Footprint(keeps_input=train, forward_scratch=a, backward_scratch=2 * a)

    def forward(self, x, *, train=False, keep_cache=True, relu=False):
        """``relu=True``: the ReLU after this layer applied in the same pass (the net passes it
        where that ReLU alone reads this output); ``backward`` then takes the ReLU's gradient."""
        self._check_input(x)
        if x.ndim not in (2, 4):
            raise ShapeError(f"{self.label}: input `x` must be (N, H, W, C) or (N, D); received shape {tuple(x.shape)}.")
        y, cache = batch_norm_forward(
            x, self.params["gamma"], self.params["beta"], train=train,
            running_mean=self.state["running_mean"], running_var=self.state["running_var"], eps=self.eps,
            reduce=self.stats_reduce if train else None, relu=relu,
        )
        if train:
            m = self.momentum
            unbiased = cache.var * (cache.count / (cache.count - 1))
            self.state["running_mean"] = ((1 - m) * self.state["running_mean"] + m * cache.mean).astype(self.dtype)
            self.state["running_var"] = ((1 - m) * self.state["running_var"] + m * unbiased).astype(self.dtype)
        self._cache = cache if keep_cache else None
        return y

    def affine_sources(self) -> tuple:
        """The arrays :meth:`inference_affine` is made from: γ, β and the running statistics."""
        return self.params["gamma"], self.params["beta"], self.state["running_mean"], self.state["running_var"]

    def inference_affine(self):
        """``(scale, shift)``, float64: ``forward(train=False)`` is ``x · scale + shift`` with
        ``scale = γ / sqrt(running_var + eps)`` and ``shift = β - running_mean · scale``."""
        g, b, m, v = (a.astype(np.float64) for a in self.affine_sources())
        scale = g / get_array_module(g).sqrt(v + self.eps)
        return scale, b - m * scale

    def backward(self, dy):
        dx, dgamma, dbeta = batch_norm_backward(dy, self._take_cache())
        self.grads["gamma"], self.grads["beta"] = dgamma, dbeta
        return dx


class ChannelAffine(Layer):
    """``y = x · scale + shift`` per channel (the last axis): batch norm at inference, as ONNX writes
    it (``Mul`` and ``Add`` of per-channel constants) and as a BN folds into.

    ``ChannelAffine()``.  Parameters ``scale`` (ones) and ``shift`` (zeros), shape ``(C,)``, both
    trained; no state, and the same map in training and inference (a :class:`BatchNorm` would
    switch to batch statistics in training).  Shape unchanged, ``(N, H, W, C)`` or ``(N, D)``.
    Pattern: ``AFFINE``.
    """

    kind = "AFFINE"
    name_prefix = "affine"
    output_private = True
    grad_private = True
    pointwise = True
    affine_at_inference = True
    pattern_words = ("AFFINE",)

    def output_shape(self, input_shape):
        if len(input_shape) not in (1, 3):
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C) or (D,); received shape "
                             f"{tuple(input_shape)}.")
        return tuple(input_shape)

    def build(self, input_shape, *, rng=None, xp=None):
        super().build(input_shape)
        xp = array_module(xp)
        c = input_shape[-1]
        self.params = {"scale": xp.ones(c, dtype=self.dtype), "shift": xp.zeros(c, dtype=self.dtype)}
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        y, cache = channel_affine_forward(x, self.params["scale"], self.params["shift"])
        self._cache = cache if keep_cache else None
        return y

    def affine_sources(self) -> tuple:
        """The arrays :meth:`inference_affine` is made from: the parameters."""
        return self.params["scale"], self.params["shift"]

    def inference_affine(self):
        """``(scale, shift)``, float64, as :meth:`BatchNorm.inference_affine`: the parameters themselves."""
        return tuple(a.astype(np.float64) for a in self.affine_sources())

    def backward(self, dy):
        dx, dscale, dshift = channel_affine_backward(dy, self._take_cache())
        self.grads["scale"], self.grads["shift"] = dscale, dshift
        return dx

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``C`` weights (scale) and ``C`` biases (shift); 2 FLOPs per value forward, 4 backward."""
        c, n = input_shapes[0][-1], math.prod(output_shape)
        return LayerCost(c, c, 0, 2 * n, 4 * n)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to ``x``; backward makes ``dy · x`` (one activation)."""
        a = batch * math.prod(output_shape) * itemsize
        return Footprint(keeps_input=train, backward_scratch=a)
