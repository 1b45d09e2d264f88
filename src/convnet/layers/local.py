"""``LocallyConnected2D``: a CONV layer without parameter sharing."""
from __future__ import annotations

from ..errors import ConfigError, ShapeError
from ..ops.geometry import as_pair, check_fit, conv_geometry, is_int, parse_padding
from ..ops.local import locally_connected2d_backward, locally_connected2d_forward
from .accounting import Footprint, LayerCost, Window
from .base import Layer, array_module, check_init, default_rng, init_weights


class LocallyConnected2D(Layer):
    """Like ``Conv2D`` but every output position has its own filters.

    ``LocallyConnected2D(filters, kernel_size, *, stride=1, padding=0, dilation=1,
    use_bias=True, fit="error", init="he")``.  Parameters ``w (Ho, Wo, kh, kw, C, K)``
    and ``b (Ho, Wo, K)``: ``Ho·Wo`` times the weights of the equivalent CONV.
    """

    kind = "LOCAL"
    name_prefix = "local"
    can_skip_dx = True
    spatially_agnostic = False

    def __init__(self, filters, kernel_size, *, stride=1, padding=0, dilation=1, use_bias=True, fit="error", init="he", name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not is_int(filters) or filters < 1:
            raise ConfigError(f"Argument `filters` must be a positive integer; received filters={filters!r}.")
        self.filters = int(filters)
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.dilation = as_pair(dilation, "dilation")
        self.padding = parse_padding(padding)
        self.use_bias = bool(use_bias)
        self.fit = check_fit(fit)
        self.init = check_init(init)

    def geometry(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        return conv_geometry(input_shape[:2], self.kernel_size, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, fit=self.fit, layer=self.label)

    def output_shape(self, input_shape):
        return (*self.geometry(input_shape).out_hw, self.filters)

    def build(self, input_shape, *, rng=None, xp=None):
        super().build(input_shape)
        rng, xp = default_rng(rng), array_module(xp)
        ho, wo = self.geometry(input_shape).out_hw
        kh, kw = self.kernel_size
        c = input_shape[2]
        fan_in = kh * kw * c
        self.params = {"w": xp.asarray(init_weights(self.init, rng, (ho, wo, kh, kw, c, self.filters), fan_in,
                                                    kh * kw * self.filters, self.dtype))}
        if self.use_bias:
            self.params["b"] = xp.zeros((ho, wo, self.filters), dtype=self.dtype)
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Weights ``Ho·Wo·kh·kw·C·K`` and ``Ho·Wo·K`` biases; MACs and FLOPs as CONV; a window."""
        c, (ho, wo, k) = input_shapes[0][2], output_shape
        kh, kw = self.kernel_size
        macs = ho * wo * k * kh * kw * c
        bias = ho * wo * k if self.use_bias else 0
        return LayerCost(ho * wo * kh * kw * c * k, bias, macs, 2 * macs + bias, 4 * macs + bias,
                         Window((kh, kw), tuple(self.stride), tuple(self.dilation)))

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to ``x``; the columns of every window forward, twice that backward."""
        ho, wo, _ = output_shape
        kh, kw = self.kernel_size
        cols = batch * ho * wo * kh * kw * input_shapes[0][2] * itemsize
        return Footprint(keeps_input=train, forward_scratch=cols, backward_scratch=2 * cols)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = locally_connected2d_forward(x, self.params["w"], self.params.get("b"), stride=self.stride,
                                               padding=self.padding, dilation=self.dilation, fit=self.fit, layer=self.label)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy, *, need_dx=True):
        dx, dw, db = locally_connected2d_backward(dy, self._take_cache(), need_dx=need_dx)
        self.grads["w"] = dw
        if self.use_bias:
            self.grads["b"] = db
        return dx
