"""``Conv2D``: the CONV layer of the notes (K filters of F×F, stride S, zero padding P)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..ops.conv import (
    ALGORITHMS,
    DEFAULT_WORKSPACE_BYTES,
    conv2d_backward,
    conv2d_forward,
)
from ..ops.geometry import as_pair, check_fit, conv_geometry, is_int, parse_padding
from .base import Layer, check_init, default_rng, init_weights


class Conv2D(Layer):
    """A convolutional layer over NHWC input with HWIO weights.

    ``Conv2D(filters, kernel_size, *, stride=1, padding=0, dilation=1, groups=1,
    use_bias=True, fit="error", init="he", algorithm="auto")`` — ``algorithm`` picks
    im2col, gemm1x1, direct, smallmap or Winograd (see :func:`convnet.ops.conv.choose_algorithm`).

    Shape: input ``(N, H, W, C)`` → output ``(N, Ho, Wo, filters)`` with
    ``Ho = (H - dh·(kh-1) - 1 + 2Ph) / sh + 1`` (and ``fit`` deciding what happens
    when that is not an integer).  Parameters: ``w (kh, kw, C/groups, filters)``
    and ``b (filters,)`` — ``(F·F·C)·K`` weights and ``K`` biases.

    >>> layer = Conv2D(10, 5, stride=1, padding=2)
    >>> layer.output_shape((32, 32, 3)), layer.build((32, 32, 3)) or layer.num_params()
    ((32, 32, 10), 760)
    """

    kind = "CONV"
    output_private = True
    grad_private = True
    can_skip_dx = True

    def __init__(
        self,
        filters,
        kernel_size,
        *,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        use_bias=True,
        fit="error",
        init="he",
        algorithm="auto",
        workspace_bytes=DEFAULT_WORKSPACE_BYTES,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        if not is_int(filters) or filters < 1:
            raise ConfigError(f"Argument `filters` must be a positive integer; received filters={filters!r}.")
        if not is_int(groups) or groups < 1:
            raise ConfigError(f"Argument `groups` must be a positive integer; received groups={groups!r}.")
        if filters % groups:
            raise ConfigError(f"Argument `filters` ({filters}) must be divisible by `groups` ({groups}).")
        self.filters = int(filters)
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.dilation = as_pair(dilation, "dilation")
        self.padding = parse_padding(padding)
        self.groups = int(groups)
        self.use_bias = bool(use_bias)
        self.fit = check_fit(fit)
        self.init = check_init(init)
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"Argument `algorithm` must be one of {ALGORITHMS}; received algorithm={algorithm!r}.")
        self.algorithm = algorithm
        self.workspace_bytes = int(workspace_bytes)

    def geometry(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        return conv_geometry(
            input_shape[:2], self.kernel_size, stride=self.stride, padding=self.padding,
            dilation=self.dilation, fit=self.fit, layer=self.label,
        )

    def output_shape(self, input_shape):
        geom = self.geometry(input_shape)
        c = input_shape[2]
        if c % self.groups:
            raise ConfigError(
                f"{self.label}: input channels C={c} must be divisible by groups={self.groups}; "
                f"received input shape {tuple(input_shape)}."
            )
        return (*geom.out_hw, self.filters)

    def build(self, input_shape, *, rng=None):
        super().build(input_shape)
        rng = default_rng(rng)
        kh, kw = self.kernel_size
        cg = input_shape[2] // self.groups
        fan_in, fan_out = kh * kw * cg, kh * kw * self.filters // self.groups
        self.params = {"w": init_weights(self.init, rng, (kh, kw, cg, self.filters), fan_in, fan_out, self.dtype)}
        if self.use_bias:
            self.params["b"] = np.zeros(self.filters, dtype=self.dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = conv2d_forward(
            x, self.params["w"], self.params.get("b"), stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups, fit=self.fit,
            algorithm=self.algorithm, workspace_bytes=self.workspace_bytes, layer=self.label,
        )
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy, *, need_dx=True):
        dx, dw, db = conv2d_backward(dy, self._take_cache(), need_dx=need_dx)
        self.grads["w"] = dw
        if self.use_bias:
            self.grads["b"] = db
        return dx
