"""Pooling layers: ``MaxPool2D``, ``AvgPool2D``, ``L2Pool2D``, ``GlobalAvgPool``.

``MaxPool2D(pool_size=2, *, stride=None, padding=0, fit="error")`` — stride
defaults to the pool size (the notes' F=2, S=2; ``MaxPool2D(3, stride=2)`` is
AlexNet's overlapping pooling).  Shape: ``(N, H, W, C) → (N, Ho, Wo, C)`` with
``Ho = (H - F + 2P) / S + 1``.  No parameters.  Max pooling keeps its switches
only when a backward pass may follow (``keep_cache=True``).
"""
from __future__ import annotations

import math

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
from .accounting import GLOBAL, Footprint, LayerCost, Window, padded_elements
from .base import Layer
from .spelling import Spelling, fit_suffix, hw, not_writable, symmetric_pads


class _Pool2D(Layer):
    kind = "POOL"
    name_prefix = "pool"
    pattern_options = ("S", "P", "FLOOR", "CEIL")
    pattern_size = True

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

    def _window(self) -> Window:
        return Window(tuple(self.pool_size), tuple(self.stride))

    def _padded_bytes(self, input_shapes, batch, itemsize) -> int:
        """The zero-padded (−inf for max) copy of the input the ops make when there is padding."""
        return batch * padded_elements(input_shapes[0], self.geometry(input_shapes[0])) * itemsize

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``POOL[F]`` (default 2) with ``/S`` (default F), ``/P`` (default 0), ``/FLOOR``, ``/CEIL``."""
        f = s.size or (2, 2)
        if min(f) < 1:
            raise s.fail(f"{s.text!r} has a zero pooling size", "F >= 1")
        return {"pool_size": f, "stride": s.options.get("S", f), "padding": s.options.get("P", (0, 0)),
                "fit": s.fit()}

    def to_pattern(self) -> str:
        f = tuple(self.pool_size)
        text = f"{self.pattern_words[0]}{hw(f)}"
        if tuple(self.stride) != f:
            text += f"/S{hw(self.stride)}"
        if self.padding == "same":
            raise not_writable(self.label, "uses 'same' padding, which POOL cannot write")
        p = symmetric_pads(self.padding, self.label)
        if p != (0, 0):
            text += f"/P{hw(p)}"
        return text + fit_suffix(self.fit)


class MaxPool2D(_Pool2D):
    """Max pooling; ties route the gradient to the first maximum (see :mod:`convnet.ops.pool`)."""

    kind = "MAXPOOL"
    pattern_words = ("POOL", "MAXPOOL")

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        if not keep_cache:
            self._cache = None
            return max_pool2d(x, **self._kw())
        y, self._cache = max_pool2d_forward(x, **self._kw())
        return y

    def backward(self, dy):
        return max_pool2d_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``kh·kw − 1`` comparisons per output forward, one routed gradient backward; a window."""
        kh, kw = self.pool_size
        n = math.prod(output_shape)
        return LayerCost(0, 0, 0, (kh * kw - 1) * n, n, self._window())

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Training: one uint8 switch per output kept (int32 for windows over 256), two bool masks
        forward; the padded input (if P > 0) forward and backward."""
        pad = self._padded_bytes(input_shapes, batch, itemsize)
        o = batch * math.prod(output_shape)
        if not train:
            return Footprint(forward_scratch=pad)
        kh, kw = self.pool_size
        switches = o * (1 if kh * kw <= 256 else 4)
        return Footprint(cache_bytes=switches, forward_scratch=pad + 2 * o, backward_scratch=pad + o * (1 + itemsize))


class AvgPool2D(_Pool2D):
    """Average pooling; ``count_include_pad`` as in PyTorch (default True)."""

    kind = "AVGPOOL"
    pattern_words = ("AVGPOOL",)

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

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``kh·kw`` FLOPs per output forward and backward; a window."""
        kh, kw = self.pool_size
        n = math.prod(output_shape)
        return LayerCost(0, 0, 0, kh * kw * n, kh * kw * n, self._window())

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps shapes only; the padded input (if P > 0), and backward a gradient-sized temporary."""
        pad = self._padded_bytes(input_shapes, batch, itemsize)
        return Footprint(forward_scratch=pad, backward_scratch=pad + batch * math.prod(output_shape) * itemsize)


class L2Pool2D(_Pool2D):
    """L2-norm pooling ``sqrt(Σ x²)`` over each window."""

    kind = "L2POOL"
    pattern_words = ("L2POOL",)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = l2_pool2d_forward(x, **self._kw())
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return l2_pool2d_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``kh·kw`` FLOPs per output forward and backward; a window."""
        kh, kw = self.pool_size
        n = math.prod(output_shape)
        return LayerCost(0, 0, 0, kh * kw * n, kh * kw * n, self._window())

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps references to ``x`` and ``y``; the padded input and ``x²`` forward."""
        geom = self.geometry(input_shapes[0])
        pad = self._padded_bytes(input_shapes, batch, itemsize)
        sq = batch * (padded_elements(input_shapes[0], geom) or math.prod(input_shapes[0])) * itemsize
        return Footprint(keeps_input=train, keeps_output=train, forward_scratch=pad + sq,
                         backward_scratch=2 * pad + 3 * batch * math.prod(output_shape) * itemsize)


class GlobalAvgPool(Layer):
    """Average over height and width: ``(N, H, W, C) → (N, C)`` (GoogLeNet, ResNet)."""

    kind = "GAP"
    name_prefix = "gap"
    output_private = True
    grad_private = True
    pattern_words = ("GAP", "GLOBALAVGPOOL")

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

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``H·W·C`` FLOPs forward and backward; a window over the whole input."""
        n = math.prod(input_shapes[0])
        return LayerCost(0, 0, 0, n, n, GLOBAL)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps shapes only; no scratch."""
        return Footprint()
