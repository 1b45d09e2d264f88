"""2-D convolution, fast: the op of :mod:`convnet.ops.conv` with its signature, run by a plan.

``conv2d_forward(x, w, b, ...)`` makes (or looks up) the :class:`~convnet.ops.fast.plan.ConvPlan`
of the layer shape and runs its algorithm; the cache keeps the plan, and ``conv2d_backward``
computes ``dx`` and ``dw`` the ways the plan says:

==============  ============================================================================
algorithm       forward
==============  ============================================================================
gemm1x1         ``(N·H·W, C) @ (C, K)``, no copy (strided: the pixels read, copied out)
direct          compiled loops over the unpadded input (:mod:`convnet.ops.kernels.direct`)
smallmap        a GEMM per output pixel and kernel row over the taps inside the image
winograd4/2     F(4×4, 3×3) / F(2×2, 3×3) (:mod:`convnet.ops.fast.winograd`)
im2col          columns of a block of output rows at a time (:mod:`convnet.ops.fast.columns`)
==============  ============================================================================

The results equal :mod:`convnet.ops.conv`'s up to rounding (the tests compare the two on the
same inputs).

**Prepacked weights.**  The weight transforms an algorithm makes from ``w`` — Winograd's
transformed filter ``U`` (forward) and the rotated filter's (``dx``), the contiguous rotated,
transposed filter of the stride-1 ``dx`` by convolution — are made on every call unless the
caller passes ``prepacked=`` a :class:`Prepacked`: then they are taken from it, and made and
kept there when missing (as its ``keep_forward`` / ``keep_backward`` say).  The caller owns it
and replaces it when the weights change (:class:`~convnet.layers.Conv2D` does, by its
``weights_version``); the results are bitwise those of the unpacked call.  The layers keep them
only with ``CONVNET_PREPACK=1`` (:func:`prepack_enabled`), which :func:`convnet.runtime.tune` sets
for the ``convnet`` command: a library user who edits ``layer.params`` in place without calling
``weights_changed()`` would otherwise compute with the old transform, so it is off by default.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ...backend import get_array_module
from .. import kernels
from ..checks import check_grad_shape, check_same_dtype
from ..conv import DEFAULT_WORKSPACE_BYTES, check_conv_args
from ..kernels import col2im as col2im_kernels
from ..kernels import direct
from ..kernels import norm as norm_kernels
from . import columns, smallmap
from .plan import ConvPlan, conv_plan
from .winograd import transform_filter, winograd_conv, winograd_dw, winograd_dx


def prepack_enabled() -> bool:
    """True when the environment says ``CONVNET_PREPACK=1``: layers then keep their weight transforms."""
    return os.environ.get("CONVNET_PREPACK", "0").strip() == "1"


@dataclass
class Prepacked:
    """Weight transforms of one weight array ``w``, kept between calls while it is unchanged.

    ``arrays`` maps a name (``("U", m)``, ``("U_rot", m)``, ``"w_rot"``) to the array;
    ``keep_forward`` / ``keep_backward``: whether a transform made by a forward / backward call
    is kept (else it is made, used and dropped — training, where the weights change every step).
    ``made`` counts the transforms made through it (the tests read it).  The op never checks that
    ``w`` is still what the arrays were made from: the owner makes a new one when it changes.
    """

    keep_forward: bool = True
    keep_backward: bool = True
    arrays: dict = field(default_factory=dict)
    made: int = 0

    def get(self, name, make, *, backward: bool = False):
        """The kept transform ``name``, or ``make()`` (kept when this pass keeps its transforms)."""
        a = self.arrays.get(name)
        if a is None:
            a = make()
            self.made += 1
            if self.keep_backward if backward else self.keep_forward:
                self.arrays[name] = a
        return a

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays.values()))


def _pack(prepacked: Prepacked | None, name, make, *, backward: bool = False):
    return make() if prepacked is None else prepacked.get(name, make, backward=backward)


@dataclass
class PlannedConvCache:
    """What backward needs: the input (a reference, not a copy), the weights and the plan — and,
    for a strided 1×1 layer, the pixels it read, copied out by forward (dw's GEMM operand)."""

    x: object
    w: object
    has_bias: bool
    plan: ConvPlan
    prepacked: Prepacked | None = None
    pixels: object = None

    @property
    def algorithm(self) -> str:
        return self.plan.algorithm

    @property
    def geom(self):
        return self.plan.geom

    @property
    def groups(self) -> int:
        return self.plan.groups

    @property
    def workspace_bytes(self) -> int:
        return self.plan.workspace_bytes


def conv2d_forward(
    x,
    w,
    b=None,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    fit="error",
    algorithm="auto",
    workspace_bytes=DEFAULT_WORKSPACE_BYTES,
    layer="conv2d",
    prepacked: Prepacked | None = None,
    backward: bool = True,
):
    """Convolve an NHWC batch with HWIO kernels; returns ``(y, cache)``.

    The arguments are :func:`convnet.ops.conv.conv2d_forward`'s; ``algorithm``: ``"auto"`` (the
    plan's choice, :func:`~convnet.ops.fast.plan.choose_algorithm`) or one of
    :data:`~convnet.ops.conv.ALGORITHMS` (ConfigError where it cannot run the layer);
    ``prepacked``: a :class:`Prepacked` of ``w`` to take (and keep) its transforms from, also
    for the backward of this call (see the module docstring); ``backward=False``: the cache will
    not be used for a backward pass (see :func:`forward_for_backward`).
    """
    check_conv_args(x, w, b, groups, layer)
    plan = conv_plan(x.shape, w.shape, x.dtype, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     fit=fit, algorithm=algorithm, workspace_bytes=workspace_bytes, array_module=get_array_module(x),
                     layer=layer)
    if backward:
        return forward_for_backward(plan, x, w, b, prepacked=prepacked)
    return run_forward(plan, x, w, b, prepacked=prepacked), PlannedConvCache(x, w, b is not None, plan, prepacked)


def forward_for_backward(plan: ConvPlan, x, w, b=None, *, prepacked: Prepacked | None = None):
    """``(y, cache)`` of ``plan``'s forward for a backward pass to follow.  A strided 1×1 layer's
    ``dw`` is a GEMM of the pixels it read, copied out: that copy is made here, kept in the cache
    (``plan.cache_bytes``) and ``y`` is its GEMM — whatever the forward algorithm (a direct kernel
    reads the pixels in place, which pays only where no copy is needed afterwards: inference)."""
    if plan.cache_bytes:  # a strided 1×1
        pixels = _pixels_read(x, plan.geom)
        return _gemm_of_pixels(pixels, w, b), PlannedConvCache(x, w, b is not None, plan, prepacked, pixels)
    return run_forward(plan, x, w, b, prepacked=prepacked), PlannedConvCache(x, w, b is not None, plan, prepacked)


def _gemm_of_pixels(pixels, w, b):
    """A 1×1 convolution of the pixels it reads (``(N, Ho, Wo, C)``): one GEMM, then the bias."""
    n, ho, wo, c = pixels.shape
    y = (pixels.reshape(n * ho * wo, c) @ w.reshape(c, -1)).reshape(n, ho, wo, -1)
    if b is not None:
        y += b
    return y


def run_forward(plan: ConvPlan, x, w, b=None, *, prepacked: Prepacked | None = None):
    """``y`` of ``plan``'s forward algorithm (the arguments already checked against the plan);
    Winograd's ``U`` from ``prepacked`` where given."""
    geom, a = plan.geom, plan.algorithm
    n, h, wd, c = x.shape
    k = w.shape[3]
    ho, wo = geom.out_hw
    if a == "gemm1x1":
        return _gemm_of_pixels(_pixels_read(x, geom), w, b)
    elif a == "direct":
        y = direct.conv(x, w, geom.out_hw, geom.stride, geom.dilation, (geom.pads[0][0], geom.pads[1][0]), bias=b)
        b = None  # the kernel's sums start at it
    elif a == "smallmap":
        y = smallmap.conv(x, w, geom, bias=b)
        b = None
    elif a.startswith("winograd"):
        m = int(a[-1])
        u = _pack(prepacked, ("U", m), lambda: transform_filter(w, m))
        y = winograd_conv(x, None, pads=geom.pads, m=m, out_hw=(ho, wo), u=u, bias=b,
                          workspace_bytes=plan.workspace_bytes)
        b = None  # added by the output transform
    else:
        y = columns.conv(x, w, geom, plan.groups, plan.workspace_bytes)
    if b is not None:
        y += b
    return y


def conv2d_backward(dy, cache: PlannedConvCache, *, need_dx=True):
    """Gradients ``(dx, dw, db)`` of a convolution; ``db`` is None when there was no bias.

    ``need_dx=False`` (the first layer of a net in training) skips the data gradient — for im2col
    the whole column-gradient GEMM and col2im — and returns ``dx = None``.
    """
    x, w, plan, packs = cache.x, cache.w, cache.plan, cache.prepacked
    xp = get_array_module(x)
    check_grad_shape(dy, (plan.x_shape[0], *plan.geom.out_hw, plan.w_shape[3]), "conv2d_backward")
    check_same_dtype("conv2d_backward", x, dy=dy)  # every algorithm alike (the forward input's dtype)
    db = _bias_grad(dy) if cache.has_bias else None
    if plan.dx == "col2im" and plan.dw == "columns":  # one pass over the blocks of columns gives both
        dx, dw = columns.backward(x, w, dy, plan.geom, plan.groups, plan.workspace_bytes, need_dx=need_dx,
                                  gather=plan.compiled)
        return dx, dw, db
    if plan.dx == "winograd":
        dy = xp.ascontiguousarray(dy)
    # the order the memory model counts: dw first where its buffers are held while dx's
    # temporaries live (planes) or where it is a compiled kernel or one GEMM
    if plan.dw in ("gemm1x1", "direct") or plan.dx == "planes":
        dw = _weight_grad(plan, x, w, dy, cache.pixels)
        return (_data_grad(plan, x, w, dy, packs) if need_dx else None), dw, db
    dx = _data_grad(plan, x, w, dy, packs) if need_dx else None
    return dx, _weight_grad(plan, x, w, dy), db


def _data_grad(plan: ConvPlan, x, w, dy, packs: Prepacked | None = None):
    geom, how = plan.geom, plan.dx
    if how == "gemm1x1":
        n, h, wd, c = x.shape
        ho, wo = geom.out_hw
        grads = (dy.reshape(n * ho * wo, -1) @ w.reshape(c, -1).T).reshape(n, ho, wo, c)
        if geom.stride == (1, 1):
            return grads
        if kernels.usable(grads):
            dx = np.empty(x.shape, dtype=grads.dtype)
            col2im_kernels.spread_strided(grads, geom.stride, dx)
            return dx
        dx = get_array_module(x).zeros(x.shape, dtype=grads.dtype)  # pixels never read get no gradient
        dx[_read_slices(geom)] = grads
        return dx
    if how == "smallmap":
        return smallmap.dx(dy, w, geom, x.shape)
    if how == "winograd":
        m = int(plan.algorithm[-1])
        u = _pack(packs, ("U_rot", m), lambda: transform_filter(w, m, rotated=True), backward=True)
        return winograd_dx(dy, w, pads=geom.pads, m=m, in_hw=x.shape[1:3], workspace_bytes=plan.workspace_bytes,
                           u=u)
    if how == "planes":
        return columns.dx_by_planes(dy, w, geom, x.shape, plan.workspace_bytes)
    if how == "phases":
        return direct.data_grad_by_phases(dy, w, x.shape, geom.stride, (geom.pads[0][0], geom.pads[1][0]))
    if how == "convolution":  # stride 1: dy convolved with the filter rotated 180°, C and K swapped
        xp = get_array_module(dy)
        w_rot = _pack(packs, "w_rot", lambda: xp.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2)),
                      backward=True)
        return run_forward(plan.dx_conv, dy, w_rot)
    # col2im, for a layer whose dw came from its own kernel
    return columns.dx_by_columns(dy, w, geom, x.shape, plan.workspace_bytes)


def _weight_grad(plan: ConvPlan, x, w, dy, pixels=None):
    geom, how = plan.geom, plan.dw
    if how == "gemm1x1":
        n, (ho, wo), c, k = x.shape[0], geom.out_hw, x.shape[3], w.shape[3]
        pixels = (_pixels_read(x, geom) if pixels is None else pixels).reshape(n * ho * wo, c)
        dy = dy.reshape(n * ho * wo, k)
        # Σ over the pixels of pixelᵀ·dy, as the product whose rows are the wider of C and K:
        # BLAS ran it up to 2× faster that way round (docs/tuning.md)
        dw = get_array_module(x).ascontiguousarray((dy.T @ pixels).T) if k > c else pixels.T @ dy
        return dw.reshape(w.shape)
    if how == "smallmap":
        return smallmap.dw(x, dy, geom, geom.kernel)
    if how == "winograd":
        return winograd_dw(x, dy, pads=geom.pads, m=int(plan.algorithm[-1]), workspace_bytes=plan.workspace_bytes)
    if how == "direct":
        return direct.weight_grad(x, dy, geom.kernel, geom.stride, geom.dilation, (geom.pads[0][0], geom.pads[1][0]))
    return columns.backward(x, w, dy, geom, plan.groups, plan.workspace_bytes, need_dx=False, gather=False)[1]


def _read_slices(geom):
    """The pixels an unpadded 1×1 convolution reads: every stride-th row and column from the first
    (those past the last output are cropped)."""
    (ho, wo), (sh, sw) = geom.out_hw, geom.stride
    return (slice(None), slice(0, (ho - 1) * sh + 1, sh), slice(0, (wo - 1) * sw + 1, sw))


def _pixels_read(x, geom):
    """``x`` itself at stride 1; else the pixels read, copied out contiguously (one GEMM operand)."""
    if geom.stride == (1, 1):
        return x
    return get_array_module(x).ascontiguousarray(x[_read_slices(geom)])


def _bias_grad(dy):
    """``Σ dy`` per output channel: a compiled single pass in float64 with numba (NumPy's reduction
    over the three leading axes is a slow pass over a narrow matrix), else NumPy's sum."""
    if kernels.usable(dy):
        return norm_kernels.channel_sum(dy.reshape(-1, dy.shape[-1])).astype(dy.dtype)
    return dy.sum(axis=(0, 1, 2))
