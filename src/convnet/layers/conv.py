"""``Conv2D``: the CONV layer of the notes (K filters of F×F, stride S, zero padding P)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..ops.fast import (
    ALGORITHMS,
    DEFAULT_WORKSPACE_BYTES,
    conv2d_backward,
    conv2d_forward,
    conv_plan,
)
from ..ops.fast.conv import Prepacked, prepack_enabled
from ..ops.fast.winograd import filter_bytes
from ..ops.geometry import as_pair, check_fit, conv_geometry, parse_padding
from .accounting import Footprint, LayerCost, Window
from .base import Layer, array_module, check_filters, check_init, default_rng, init_weights
from .spelling import Spelling, filters_and_size, fit_suffix, hw, symmetric_pads


class Conv2D(Layer):
    """A convolutional layer over NHWC input with HWIO weights.

    ``Conv2D(filters, kernel_size, *, stride=1, padding=0, dilation=1, groups=1,
    use_bias=True, fit="error", init="he", algorithm="auto")`` — ``algorithm`` picks
    im2col, gemm1x1, direct, smallmap or Winograd (see :func:`convnet.ops.fast.choose_algorithm`).

    **Prepacked weights** (with ``CONVNET_PREPACK=1``, which the ``convnet`` command sets): the transforms the convolution makes from
    ``w`` (Winograd's ``U``; for ``dx``, the rotated filter's ``U`` or the rotated, transposed copy)
    are kept between calls while the weights are unchanged — keyed by :attr:`weights_version`, the
    array ``w`` itself, its dtype, shape and array module, and per transform by the algorithm (the
    Winograd tile) — and dropped by :meth:`weights_changed`.
    Only where they pay: the forward ``U`` of inference (``train=False``) and anything of a frozen
    layer (``trainable = False``), whose weights do not change between steps; a training forward
    or backward of a trainable layer reuses a current one (made by an evaluation since the last
    step) but keeps none.  After editing ``params`` in place, call :meth:`weights_changed`.

    Shape: input ``(N, H, W, C)`` → output ``(N, Ho, Wo, filters)`` with
    ``Ho = (H - dh·(kh-1) - 1 + 2Ph) / sh + 1`` (and ``fit`` deciding what happens
    when that is not an integer).  Parameters: ``w (kh, kw, C/groups, filters)``
    and ``b (filters,)`` — ``(F·F·C)·K`` weights and ``K`` biases.

    >>> layer = Conv2D(10, 5, stride=1, padding=2)
    >>> layer.output_shape((32, 32, 3)), layer.build((32, 32, 3)) or layer.num_params()
    ((32, 32, 10), 760)
    """

    kind = "CONV"
    name_prefix = "conv"
    output_private = True
    grad_private = True
    can_skip_dx = True
    image_filters = True
    absorbs_affine = True
    #: (key, sources, w, b, Prepacked) of the folded weights (see forward_folded); the class value
    #: stands in for a layer pickled before it existed
    _folded = None
    pattern_words = ("CONV",)
    pattern_options = ("S", "P", "SAME", "G", "D", "NOBIAS", "FLOOR", "CEIL")
    pattern_size = pattern_arg = True

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
        self.filters, self.groups = check_filters(filters, groups)
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.dilation = as_pair(dilation, "dilation")
        self.padding = parse_padding(padding)
        self.use_bias = bool(use_bias)
        self.fit = check_fit(fit)
        self.init = check_init(init)
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"Argument `algorithm` must be one of {ALGORITHMS}; received algorithm={algorithm!r}.")
        self.algorithm = algorithm
        self.workspace_bytes = int(workspace_bytes)
        self._packed = None  # (key, Prepacked): see the class docstring
        self._folded = None

    def weights_changed(self) -> None:
        super().weights_changed()
        self._packed = self._folded = None

    def to(self, xp) -> None:
        super().to(xp)
        self._packed = self._folded = None

    @property
    def prepacked_bytes(self) -> int:
        """Bytes of the weight transforms this layer keeps now (folded weights included)."""
        packed = 0 if self._packed is None else self._packed[1].nbytes
        if self._folded is not None:
            _, _, w, b, pack = self._folded
            packed += w.nbytes + b.nbytes + pack.nbytes
        return packed

    def _prepacked(self, train: bool) -> Prepacked | None:
        """The :class:`~convnet.ops.fast.conv.Prepacked` of the current weights for this call, or
        None when prepacking is off; a new (empty) one when anything of its key changed."""
        if not prepack_enabled():
            self._packed = None
            return None
        w = self.params["w"]
        # the transforms inside are named by what and which Winograd tile (("U", 4)), so a batch
        # size for which "auto" picks another algorithm adds its own beside them
        key = (self.weights_version, str(w.dtype), tuple(w.shape), type(w).__module__)
        if self._packed is None or self._packed[0] != key or self._packed[2] is not w:
            self._packed = (key, Prepacked(), w)
        pack = self._packed[1]
        pack.keep_forward = not train or not self.trainable
        pack.keep_backward = not self.trainable
        return pack

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

    def build(self, input_shape, *, rng=None, xp=None):
        super().build(input_shape)
        rng, xp = default_rng(rng), array_module(xp)
        kh, kw = self.kernel_size
        cg = input_shape[2] // self.groups
        fan_in, fan_out = kh * kw * cg, kh * kw * self.filters // self.groups
        self.params = {"w": xp.asarray(init_weights(self.init, rng, (kh, kw, cg, self.filters), fan_in, fan_out,
                                                    self.dtype))}
        if self.use_bias:
            self.params["b"] = xp.zeros(self.filters, dtype=self.dtype)
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Weights ``kh·kw·(C/g)·K`` and ``K`` biases; ``Ho·Wo·K·kh·kw·C/g`` MACs; FLOPs forward
        ``2·macs`` (+ ``Ho·Wo·K`` bias adds), backward ``4·macs`` (+ the same); a window."""
        c, (ho, wo, k) = input_shapes[0][2], output_shape
        kh, kw = self.kernel_size
        cg = c // self.groups
        macs = ho * wo * k * kh * kw * cg
        adds = ho * wo * k if self.use_bias else 0
        return LayerCost(kh * kw * cg * k, k if self.use_bias else 0, macs, 2 * macs + adds, 4 * macs + adds,
                         Window((kh, kw), tuple(self.stride), tuple(self.dilation)))

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps a reference to its input (and, strided 1×1, the pixels read: ``plan.cache_bytes``);
        the scratch is what the convolution's plan for this shape says each pass needs
        (:func:`convnet.ops.fast.conv_plan`: the algorithm it picks, its padded copies, blocks of
        columns, Winograd's transforms...); with prepacking on, the weight
        transforms the layer keeps between calls are ``persistent_bytes``, not temporaries."""
        (kh, kw), c, k = self.kernel_size, input_shapes[0][2], output_shape[2]
        plan = conv_plan((batch, *input_shapes[0]), (kh, kw, c // self.groups, k), f"f{itemsize}",
                         stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
                         fit=self.fit, algorithm=self.algorithm, workspace_bytes=self.workspace_bytes,
                         layer=self.label)
        fwd, bwd = plan.forward, plan.backward
        fwd_temp, bwd_temp, kept = fwd.temp, bwd.temp, 0
        if prepack_enabled():  # the transforms kept (see the class docstring) are no longer temporaries
            keep_forward, keep_backward = not train or not self.trainable, not self.trainable
            if plan.algorithm.startswith("winograd"):
                u = filter_bytes(c // self.groups, k, int(plan.algorithm[-1]), itemsize)
                if keep_forward:
                    kept, fwd_temp = kept + u, max(0, fwd_temp - u)
                if train and keep_backward and plan.dx == "winograd":
                    kept, bwd_temp = kept + u, max(0, bwd_temp - u)
            elif train and keep_backward and plan.dx == "convolution":  # the rotated, transposed copy
                kept += kh * kw * (c // self.groups) * k * itemsize
        return Footprint(keeps_input=train, cache_bytes=plan.cache_bytes if train else 0,
                         forward_scratch=fwd.scratch, forward_temp=fwd_temp,
                         backward_scratch=bwd.scratch, backward_temp=bwd_temp,
                         backward_temp_scratch=bwd.temp_scratch, scratch_kind=plan.scratch_kind,
                         persistent_bytes=kept)

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``CONV[F]-K`` with ``/S /P /SAME /G /D /NOBIAS /FLOOR /CEIL``: F defaults to 3 and the
        padding to ``(F-1)//2`` ("same" for odd F, as VGG's ``conv3-64``)."""
        k, f = filters_and_size(s, "CONV<F>-<K>, e.g. CONV3-64 (K filters of size F×F)")
        o = s.options
        ph, pw = o.get("P", ((f[0] - 1) // 2, (f[1] - 1) // 2))
        return {"filters": int(k), "kernel_size": f, "stride": o.get("S", (1, 1)),
                "padding": "same" if "SAME" in o else ((ph, ph), (pw, pw)), "dilation": o.get("D", (1, 1)),
                "groups": o["G"][0] if "G" in o else 1, "use_bias": "NOBIAS" not in o, "fit": s.fit()}

    def to_pattern(self) -> str:
        kh, kw = self.kernel_size
        text = f"CONV{hw((kh, kw))}-{self.filters}"
        if tuple(self.stride) != (1, 1):
            text += f"/S{hw(self.stride)}"
        if self.padding == "same":
            text += "/SAME"
        else:
            p = symmetric_pads(self.padding, self.label)
            if p != ((kh - 1) // 2, (kw - 1) // 2):
                text += f"/P{hw(p)}"
        if self.groups != 1:
            text += f"/G{self.groups}"
        if tuple(self.dilation) != (1, 1):
            text += f"/D{hw(self.dilation)}"
        if not self.use_bias:
            text += "/NOBIAS"
        return text + ("" if self.padding == "same" else fit_suffix(self.fit))  # /SAME always fits

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        if train:  # training changes what a fold was made from (this layer's or the BN's): drop it
            self._folded = None
        y, cache = conv2d_forward(
            x, self.params["w"], self.params.get("b"), stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups, fit=self.fit,
            algorithm=self.algorithm, workspace_bytes=self.workspace_bytes, layer=self.label,
            prepacked=self._prepacked(train), backward=keep_cache,
        )
        self._cache = cache if keep_cache else None
        return y

    def forward_folded(self, x, affine):
        """Inference of this layer followed by ``affine`` (a BN: ``x · scale + shift`` per channel at
        inference, :meth:`~convnet.layers.BatchNorm.inference_affine`) as one convolution with
        weights ``w · scale`` and bias ``b · scale + shift``, folded in float64 and rounded once.  They
        (and their Winograd transform) are kept while this layer's and ``affine``'s parameters, state
        and ``eps`` are unchanged (versions, the arrays themselves); a training forward drops them.
        Nothing is cached for backward."""
        self._check_input(x, 4)
        w, b = self.params["w"], self.params.get("b")
        if self._folded_stale(affine):
            scale, shift = affine.inference_affine()
            wf = (w.astype(np.float64) * scale).astype(w.dtype)
            bf = (shift if b is None else b.astype(np.float64) * scale + shift).astype(w.dtype)
            self._folded = (self._fold_key(affine), (w, b, *affine.affine_sources()), wf, bf,
                            Prepacked(keep_backward=False))
        _, _, wf, bf, pack = self._folded
        y, _ = conv2d_forward(
            x, wf, bf, stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
            fit=self.fit, algorithm=self.algorithm, workspace_bytes=self.workspace_bytes, layer=self.label,
            prepacked=pack, backward=False,
        )
        self._cache = None
        return y

    def _folded_stale(self, affine) -> bool:
        """True when the kept folded weights (if any) were not made from the current parameters."""
        if self._folded is None:
            return True
        key, made_from, *_ = self._folded
        if key != self._fold_key(affine):
            return True
        now = (self.params["w"], self.params.get("b"), *affine.affine_sources())
        return len(now) != len(made_from) or any(a is not b for a, b in zip(now, made_from))

    def _fold_key(self, affine) -> tuple:
        return self.weights_version, id(affine), affine.weights_version, getattr(affine, "eps", None)

    def backward(self, dy, *, need_dx=True):
        dx, dw, db = conv2d_backward(dy, self._take_cache(), need_dx=need_dx)
        self.grads["w"] = dw
        if self.use_bias:
            self.grads["b"] = db
        return dx
