"""Pooling layers: ``MaxPool2D``, ``AvgPool2D``, ``LpPool2D`` (``L2Pool2D``), ``GlobalAvgPool``,
``GlobalMaxPool``, ``GlobalLpPool``.

``MaxPool2D(pool_size=2, *, stride=None, padding=0, dilation=1, fit="error")`` — stride
defaults to the pool size (the notes' F=2, S=2; ``MaxPool2D(3, stride=2)`` is
AlexNet's overlapping pooling).  Shape: ``(N, H, W, C) → (N, Ho, Wo, C)`` with
``Ho = (H - F' + 2P) / S + 1``, ``F' = d·(F - 1) + 1``.  No parameters.  Max pooling keeps its
switches only when a backward pass may follow (``keep_cache=True``).

One-dimensional pooling is the case ``H = 1``: ``MaxPool2D((1, k))`` on ``(N, 1, W, C)`` is
PyTorch's ``max_pool1d(k)`` on ``(N, C, W)`` (likewise ``Conv2D(K, (1, k))`` is ``conv1d``).
"""
from __future__ import annotations

import math

from ..errors import ShapeError
from ..ops.geometry import as_pair, check_fit, parse_padding, pool_geometry
from ..ops.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    check_p,
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_lp_pool_backward,
    global_lp_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
    lp_pool2d_backward,
    lp_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)
from .accounting import GLOBAL, Footprint, LayerCost, Window, padded_elements
from .base import Layer
from .spelling import Spelling, fit_suffix, hw, not_writable, symmetric_pads


def _number(p: float) -> str:
    """``4.0 -> "4"``, ``2.5 -> "2.5"``: an order ``p`` as the pattern language writes it."""
    return str(int(p)) if p == int(p) else repr(p)


class _Pool2D(Layer):
    kind = "POOL"
    name_prefix = "pool"
    pattern_options = ("S", "P", "D", "FLOOR", "CEIL")
    pattern_size = True

    def __init__(self, pool_size=2, *, stride=None, padding=0, dilation=1, fit="error", name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pool_size = as_pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else as_pair(stride, "stride")
        self.padding = parse_padding(padding)
        self.dilation = as_pair(dilation, "dilation")
        self.fit = check_fit(fit)

    def geometry(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        return pool_geometry(input_shape[:2], self.pool_size, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, fit=self.fit, layer=self.label)

    def output_shape(self, input_shape):
        return (*self.geometry(input_shape).out_hw, input_shape[2])

    def _kw(self):
        return dict(pool_size=self.pool_size, stride=self.stride, padding=self.padding, dilation=self.dilation,
                    fit=self.fit, layer=self.label)

    def _window(self) -> Window:
        return Window(tuple(self.pool_size), tuple(self.stride), tuple(self.dilation))

    def _padded_bytes(self, input_shapes, batch, itemsize) -> int:
        """The zero-padded (−inf for max) copy of the input the ops make when there is padding."""
        return batch * padded_elements(input_shapes[0], self.geometry(input_shapes[0])) * itemsize

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``POOL[F]`` (default 2) with ``/S`` (default F), ``/P`` (default 0), ``/D`` (default 1),
        ``/FLOOR``, ``/CEIL``."""
        f = s.size or (2, 2)
        if min(f) < 1:
            raise s.fail(f"{s.text!r} has a zero pooling size", "F >= 1")
        return {"pool_size": f, "stride": s.options.get("S", f), "padding": s.options.get("P", (0, 0)),
                "dilation": s.options.get("D", (1, 1)), "fit": s.fit()}

    def _head(self) -> str:
        """The word and size (``POOL3``, ``LPPOOL3-4``)."""
        return f"{self.pattern_words[0]}{hw(tuple(self.pool_size))}"

    def to_pattern(self) -> str:
        f = tuple(self.pool_size)
        text = self._head()
        if tuple(self.stride) != f:
            text += f"/S{hw(self.stride)}"
        if self.padding == "same":
            raise not_writable(self.label, "uses 'same' padding, which POOL cannot write")
        p = symmetric_pads(self.padding, self.label)
        if p != (0, 0):
            text += f"/P{hw(p)}"
        if tuple(self.dilation) != (1, 1):
            text += f"/D{hw(self.dilation)}"
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

    def __init__(self, pool_size=2, *, stride=None, padding=0, dilation=1, fit="error", count_include_pad=True,
                 name=None, dtype=None):
        super().__init__(pool_size, stride=stride, padding=padding, dilation=dilation, fit=fit, name=name, dtype=dtype)
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


class LpPool2D(_Pool2D):
    """Lp-norm pooling ``(Σ |x|^p)^(1/p)`` over each window (ONNX LpPool).

    ``LpPool2D(pool_size=2, *, p=2, stride=None, padding=0, dilation=1, fit="error")`` with a real
    ``p >= 1``; :class:`L2Pool2D` is ``p = 2``.  Pattern: ``LPPOOL3-4`` (3×3 windows, ``p = 4``;
    ``LPPOOL3`` is ``p = 2``) with POOL's options.
    """

    kind = "LPPOOL"
    pattern_words = ("LPPOOL",)
    pattern_arg = True

    def __init__(self, pool_size=2, *, p=2, stride=None, padding=0, dilation=1, fit="error", name=None, dtype=None):
        super().__init__(pool_size, stride=stride, padding=padding, dilation=dilation, fit=fit, name=name, dtype=dtype)
        self.p = check_p(p)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = lp_pool2d_forward(x, p=self.p, **self._kw())
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return lp_pool2d_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``kh·kw`` FLOPs per output forward and backward (the powers not counted); a window."""
        kh, kw = self.pool_size
        n = math.prod(output_shape)
        return LayerCost(0, 0, 0, kh * kw * n, kh * kw * n, self._window())

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps references to ``x`` and ``y``; the padded input and ``|x|^p`` forward (``|x|`` and its
        power for p other than 1 and 2); backward the padded input, its slope ``sign(x)|x|^(p-1)``, the
        padded ``dx`` and three output-sized arrays."""
        geom = self.geometry(input_shapes[0])
        pad = self._padded_bytes(input_shapes, batch, itemsize)
        sq = batch * (padded_elements(input_shapes[0], geom) or math.prod(input_shapes[0])) * itemsize
        powered = sq * (1 if self.p in (1, 2) else 2)
        return Footprint(keeps_input=train, keeps_output=train, forward_scratch=pad + powered,
                         backward_scratch=2 * pad + (0 if self.p == 2 else sq)
                         + 3 * batch * math.prod(output_shape) * itemsize)

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """POOL's arguments, and ``-p`` (default 2) with ``p >= 1``."""
        args = super().pattern_args(s)
        if s.arg:
            try:
                args["p"] = check_p(float(s.arg))
            except ValueError:  # not a number, or refused (ConfigError is a ValueError)
                raise s.fail(f"{s.text!r} has no valid order p", "LPPOOL<F>-<p> with p >= 1, e.g. LPPOOL3-4",
                             at_arg=True) from None
        return args

    def _head(self) -> str:
        return f"{super()._head()}-{_number(self.p)}"


class L2Pool2D(LpPool2D):
    """L2-norm pooling ``sqrt(Σ x²)`` over each window: :class:`LpPool2D` with ``p = 2``.

    ``L2Pool2D(pool_size=2, *, stride=None, padding=0, dilation=1, fit="error")``; pattern ``L2POOL``."""

    kind = "L2POOL"
    pattern_words = ("L2POOL",)
    pattern_arg = False

    def __init__(self, pool_size=2, *, stride=None, padding=0, dilation=1, fit="error", name=None, dtype=None):
        super().__init__(pool_size, p=2, stride=stride, padding=padding, dilation=dilation, fit=fit, name=name,
                         dtype=dtype)

    def _head(self) -> str:
        """``L2POOL3``: the word and size, no order (the parser gives L2POOL no argument)."""
        return _Pool2D._head(self)


class _GlobalPool(Layer):
    """A pooling over the whole height and width: ``(N, H, W, C) → (N, C)``; a new output array."""

    output_private = True
    grad_private = True

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        return (input_shape[2],)


class GlobalAvgPool(_GlobalPool):
    """Average over height and width: ``(N, H, W, C) → (N, C)`` (GoogLeNet, ResNet)."""

    kind = "GAP"
    name_prefix = "gap"
    pattern_words = ("GAP", "GLOBALAVGPOOL")

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


class GlobalMaxPool(_GlobalPool):
    """Maximum over height and width: ``(N, H, W, C) → (N, C)`` (ONNX GlobalMaxPool, flattened).

    The first maximum of each channel in row-major order gets the gradient (ties as in
    :class:`MaxPool2D`).  No parameters.  Pattern: ``GMP``.
    """

    kind = "GMP"
    name_prefix = "gmp"
    pattern_words = ("GMP", "GLOBALMAXPOOL")

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = global_max_pool_forward(x)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return global_max_pool_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``H·W·C`` comparisons forward, ``C`` routed gradients backward; a window over the whole input."""
        return LayerCost(0, 0, 0, math.prod(input_shapes[0]), math.prod(output_shape), GLOBAL)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps the argmax (8 bytes per output) when training; forward, NumPy's argmax over the
        positions copies the input (the axis it reduces is not the last)."""
        o = batch * math.prod(output_shape)
        copy = batch * math.prod(input_shapes[0]) * itemsize
        return Footprint(cache_bytes=8 * o if train else 0, forward_scratch=copy, backward_scratch=8 * o)


class GlobalLpPool(_GlobalPool):
    """``(Σ_{H,W} |x|^p)^(1/p)`` per channel: ``(N, H, W, C) → (N, C)`` (ONNX GlobalLpPool, flattened).

    ``GlobalLpPool(p=2)`` with a real ``p >= 1``.  No parameters.  Pattern: ``GLPPOOL`` (p = 2) or
    ``GLPPOOL-3``.
    """

    kind = "GLPPOOL"
    name_prefix = "glp"
    pattern_words = ("GLPPOOL", "GLOBALLPPOOL")
    pattern_arg = True

    def __init__(self, p=2, *, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.p = check_p(p)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = global_lp_pool_forward(x, p=self.p)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return global_lp_pool_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``2·H·W·C`` FLOPs forward (the power and the sum), ``3·H·W·C`` backward; a window over
        the whole input."""
        n = math.prod(input_shapes[0])
        return LayerCost(0, 0, 0, 2 * n, 3 * n, GLOBAL)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps references to ``x`` and ``y``; ``|x|^p`` forward, the slope and the product backward."""
        a = batch * math.prod(input_shapes[0]) * itemsize
        return Footprint(keeps_input=train, keeps_output=train, forward_scratch=a, backward_scratch=2 * a)

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``GLPPOOL`` (p = 2) or ``GLPPOOL-p`` with ``p >= 1``."""
        if not s.arg:
            return {}
        try:
            return {"p": check_p(float(s.arg))}
        except ValueError:
            raise s.fail(f"{s.text!r} has no valid order p", "GLPPOOL-<p> with p >= 1, e.g. GLPPOOL-3",
                         at_arg=True) from None

    def to_pattern(self) -> str:
        return "GLPPOOL" if self.p == 2 else f"GLPPOOL-{_number(self.p)}"
