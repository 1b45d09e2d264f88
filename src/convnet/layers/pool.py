"""Pooling layers: ``MaxPool2D``, ``AvgPool2D``, ``L2Pool2D``, ``GlobalAvgPool``.

``MaxPool2D(pool_size=2, *, stride=None, padding=0, fit="error")`` — stride
defaults to the pool size (the notes' F=2, S=2; ``MaxPool2D(3, stride=2)`` is
AlexNet's overlapping pooling).  Shape: ``(N, H, W, C) → (N, Ho, Wo, C)`` with
``Ho = (H - F + 2P) / S + 1``.  No parameters.  Max pooling keeps its switches
only when a backward pass may follow (``keep_cache=True``).
"""
from __future__ import annotations

from ..errors import ShapeError
from ..ops.geometry import as_pair, check_fit, parse_padding, pool_geometry
from ..ops.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)
from .base import Layer


class _Pool2D(Layer):
    kind = "POOL"

    def __init__(self, pool_size=2, *, stride=None, padding=0, fit="error", name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pool_size = as_pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else as_pair(stride, "stride")
        self.padding = parse_padding(padding)
        self.fit = check_fit(fit)

    def geometry(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        return pool_geometry(input_shape[:2], self.pool_size, stride=self.stride, padding=self.padding, fit=self.fit, layer=self.label)

    def output_shape(self, input_shape):
        return (*self.geometry(input_shape).out_hw, input_shape[2])

    def _kw(self):
        return dict(pool_size=self.pool_size, stride=self.stride, padding=self.padding, fit=self.fit, layer=self.label)


class MaxPool2D(_Pool2D):
    """Max pooling; ties route the gradient to the first maximum (see :mod:`convnet.ops.pool`)."""

    kind = "MAXPOOL"

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        if not keep_cache:
            self._cache = None
            return max_pool2d(x, **self._kw())
        y, self._cache = max_pool2d_forward(x, **self._kw())
        return y

    def backward(self, dy):
        return max_pool2d_backward(dy, self._take_cache())


class AvgPool2D(_Pool2D):
    """Average pooling; ``count_include_pad`` as in PyTorch (default True)."""

    kind = "AVGPOOL"

    def __init__(self, pool_size=2, *, stride=None, padding=0, fit="error", count_include_pad=True, name=None, dtype=None):
        super().__init__(pool_size, stride=stride, padding=padding, fit=fit, name=name, dtype=dtype)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = avg_pool2d_forward(x, count_include_pad=self.count_include_pad, **self._kw())
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return avg_pool2d_backward(dy, self._take_cache())


class L2Pool2D(_Pool2D):
    """L2-norm pooling ``sqrt(Σ x²)`` over each window."""

    kind = "L2POOL"

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = l2_pool2d_forward(x, **self._kw())
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return l2_pool2d_backward(dy, self._take_cache())


class GlobalAvgPool(Layer):
    """Average over height and width: ``(N, H, W, C) → (N, C)`` (GoogLeNet, ResNet)."""

    kind = "GAP"
    output_private = True
    grad_private = True

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        return (input_shape[2],)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = global_avg_pool_forward(x)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return global_avg_pool_backward(dy, self._take_cache())
