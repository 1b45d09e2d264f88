"""``ConvTranspose2D``: the transposed convolution ("deconvolution") layer."""
from __future__ import annotations

from ..errors import ConfigError, ShapeError
from ..ops import kernels
from ..ops.conv import DEFAULT_WORKSPACE_BYTES
from ..ops.conv_transpose import backward_plan, conv_transpose2d_backward, conv_transpose2d_forward
from ..ops.fast.columns import first_block_bytes
from ..ops.geometry import as_pair, conv_transpose_geometry, parse_padding
from .accounting import Footprint, LayerCost
from .base import Layer, array_module, check_filters, check_init, default_rng, init_weights
from .spelling import Spelling, filters_and_size, hw, not_writable, symmetric_pads


class ConvTranspose2D(Layer):
    """A transposed convolution over NHWC input: the data gradient of a convolution, run forward
    (see :mod:`convnet.ops.conv_transpose`).

    ``ConvTranspose2D(filters, kernel_size, *, stride=1, padding=0, output_padding=0, dilation=1,
    groups=1, use_bias=True, init="he")`` — ``filters`` output channels.

    Shape: input ``(N, H, W, C)`` → output ``(N, Ho, Wo, filters)`` with
    ``Ho = (H - 1)·sh - P_top - P_bottom + dh·(kh - 1) + 1 + output_padding_h``.  ``padding``: an
    int, a pair, or ``((top, bottom), (left, right))``.  Parameters: ``w (kh, kw, filters/groups,
    C)`` — the HWIO weights of the convolution ``filters → C`` whose data gradient this layer is
    (PyTorch's ``ConvTranspose2d.weight (C, filters/groups, kh, kw)`` is
    ``w.transpose(3, 2, 0, 1)``) — and ``b (filters,)``.  He initialisation with
    ``fan_in = kh·kw·C/groups``.

    >>> layer = ConvTranspose2D(16, 4, stride=2, padding=1)
    >>> layer.output_shape((8, 8, 32)), layer.build((8, 8, 32)) or layer.params["w"].shape
    ((16, 16, 16), (4, 4, 16, 32))
    """

    kind = "DECONV"
    name_prefix = "deconv"
    output_private = True
    grad_private = True
    can_skip_dx = True
    pattern_words = ("DECONV", "CONVT")
    pattern_options = ("S", "P", "G", "D", "NOBIAS")
    pattern_size = pattern_arg = True

    def __init__(
        self,
        filters,
        kernel_size,
        *,
        stride=1,
        padding=0,
        output_padding=0,
        dilation=1,
        groups=1,
        use_bias=True,
        init="he",
        workspace_bytes=DEFAULT_WORKSPACE_BYTES,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.filters, self.groups = check_filters(filters, groups)
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.dilation = as_pair(dilation, "dilation")
        self.output_padding = as_pair(output_padding, "output_padding", minimum=0)
        self.padding = parse_padding(padding)
        if self.padding == "same":
            raise ConfigError("Argument `padding` must be an int, a pair or ((top, bottom), (left, right)); 'same' is "
                              "not defined for a transposed convolution.")
        self.use_bias = bool(use_bias)
        self.init = check_init(init)
        self.workspace_bytes = int(workspace_bytes)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ConfigError(f"Argument `output_padding` {self.output_padding} must be smaller than the stride "
                                  f"{self.stride} or the dilation {self.dilation} along each axis (PyTorch's rule).")

    def geometry(self, input_shape):
        """The geometry of the convolution whose data gradient this is (``size``: the output's,
        ``out``: the input's): :func:`~convnet.ops.geometry.conv_transpose_geometry`."""
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        return conv_transpose_geometry(input_shape[:2], self.kernel_size, stride=self.stride, padding=self.padding,
                                       output_padding=self.output_padding, dilation=self.dilation, layer=self.label)

    def output_shape(self, input_shape):
        geom = self.geometry(input_shape)
        c = input_shape[2]
        if c % self.groups:
            raise ConfigError(f"{self.label}: input channels C={c} must be divisible by groups={self.groups}; "
                              f"received input shape {tuple(input_shape)}.")
        return (geom.height.size, geom.width.size, self.filters)

    def build(self, input_shape, *, rng=None, xp=None):
        super().build(input_shape)
        rng, xp = default_rng(rng), array_module(xp)
        kh, kw = self.kernel_size
        c = input_shape[2]
        shape = (kh, kw, self.filters // self.groups, c)
        fan_in, fan_out = kh * kw * c // self.groups, kh * kw * self.filters // self.groups
        self.params = {"w": xp.asarray(init_weights(self.init, rng, shape, fan_in, fan_out, self.dtype))}
        if self.use_bias:
            self.params["b"] = xp.zeros(self.filters, dtype=self.dtype)
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        y, cache = conv_transpose2d_forward(
            x, self.params["w"], self.params.get("b"), stride=self.stride, padding=self.padding,
            output_padding=self.output_padding, dilation=self.dilation, groups=self.groups,
            workspace_bytes=self.workspace_bytes, layer=self.label,
        )
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy, *, need_dx=True):
        dx, dw, db = conv_transpose2d_backward(dy, self._take_cache(), need_dx=need_dx)
        self.grads["w"] = dw
        if self.use_bias:
            self.grads["b"] = db
        return dx

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Weights ``kh·kw·C·filters/g`` and ``filters`` biases; ``H·W·C·kh·kw·filters/g`` MACs (every
        input value times every tap of its group: the convolution it transposes); FLOPs forward
        ``2·macs`` (+ ``Ho·Wo·filters`` bias adds), backward ``4·macs`` (+ the same).  No window:
        the receptive-field arithmetic does not model upsampling."""
        (h, w, c), (ho, wo, k) = input_shapes[0], output_shape
        kh, kw = self.kernel_size
        macs = h * w * c * kh * kw * k // self.groups
        adds = ho * wo * k if self.use_bias else 0
        return LayerCost(kh * kw * c * k // self.groups, k if self.use_bias else 0, macs, 2 * macs + adds,
                         4 * macs + adds, None)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to its input.  Forward: with numba (ungrouped) one block of column
        gradients in the reused im2col buffer, else the column gradients of a chunk of the batch
        (within ``workspace_bytes``) and the padded output; backward: the planned convolution of
        ``dy`` (:func:`~convnet.ops.conv_transpose.backward_plan`), forward for ``dx``, then its
        weight gradient."""
        (h, w, c), (ho, wo, k) = input_shapes[0], output_shape
        kh, kw = self.kernel_size
        geom = self.geometry(input_shapes[0])
        row_bytes = w * kh * kw * k * itemsize  # column gradients of one input row
        w_bytes = kh * kw * k * c // self.groups * itemsize
        if self.groups == 1 and kernels.enabled():
            fwd_scratch, fwd_temp = first_block_bytes(batch, h, row_bytes, w_bytes, self.workspace_bytes), 0
        else:
            per_image = h * row_bytes
            chunk = max(1, min(batch, self.workspace_bytes // max(per_image, 1)))
            padded = batch * geom.height.padded_size * geom.width.padded_size * k * itemsize
            fwd_scratch, fwd_temp = 0, chunk * per_image + padded
        plan = backward_plan(geom, (batch, ho, wo, k), (kh, kw, k // self.groups, c), f"f{itemsize}", self.groups,
                             self.workspace_bytes)
        bwd = max(plan.forward.scratch, plan.backward.scratch)
        bwd_temp = max(plan.forward.temp, plan.backward.temp)
        return Footprint(keeps_input=train, forward_scratch=fwd_scratch, forward_temp=fwd_temp,
                         backward_scratch=bwd if train else 0, backward_temp=bwd_temp if train else 0,
                         scratch_kind=plan.scratch_kind or "im2col")

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``DECONV[F]-K`` (or ``CONVT``) with ``/S /P /G /D /NOBIAS``: F defaults to 3, the stride
        to 1 and the padding to 0 (``DECONV2-64/S2`` doubles the height and width)."""
        k, f = filters_and_size(s, "DECONV<F>-<K>, e.g. DECONV4-64/S2/P1 (K filters of size F×F)")
        o = s.options
        ph, pw = o.get("P", (0, 0))
        return {"filters": int(k), "kernel_size": f, "stride": o.get("S", (1, 1)), "padding": ((ph, ph), (pw, pw)),
                "dilation": o.get("D", (1, 1)), "groups": o["G"][0] if "G" in o else 1,
                "use_bias": "NOBIAS" not in o}

    def to_pattern(self) -> str:
        if self.output_padding != (0, 0):
            raise not_writable(self.label, f"has output_padding {self.output_padding}, which DECONV cannot write")
        text = f"DECONV{hw(self.kernel_size)}-{self.filters}"
        if tuple(self.stride) != (1, 1):
            text += f"/S{hw(self.stride)}"
        p = symmetric_pads(self.padding, self.label)
        if p != (0, 0):
            text += f"/P{hw(p)}"
        if self.groups != 1:
            text += f"/G{self.groups}"
        if tuple(self.dilation) != (1, 1):
            text += f"/D{hw(self.dilation)}"
        if not self.use_bias:
            text += "/NOBIAS"
        return text
