"""Transposed convolution ("deconvolution", ONNX ConvTranspose, PyTorch ``conv_transpose2d``).

A transposed convolution is the data gradient of a convolution, run forward.  Take the
convolution ``C_out -> C_in`` with HWIO weights ``w (kh, kw, C_out/groups, C_in)``: it maps an
``Ho × Wo × C_out`` map to ``H × W × C_in``.  The transposed convolution with the *same* ``w``
maps ``H × W × C_in`` back to ``Ho × Wo × C_out``, and::

    forward   y  = that convolution's dx, with x as its dy       (column gradients x @ wᵀ, col2im)
    backward  dx = that convolution's forward on dy              (the planned conv2d: im2col, Winograd...)
              dw = that convolution's dw, with dy as its input and x as its output gradient

Shapes, NHWC::

    x  (N, H, W, C_in)
    w  (kh, kw, C_out/groups, C_in)      the convolution's HWIO weights (C_in = its K)
    b  (C_out,) or None
    y  (N, Ho, Wo, C_out)   Ho = (H - 1)·sh - P_top - P_bottom + dh·(kh - 1) + 1 + output_padding_h

    y_full[n, i·sh + a·dh, j·sw + b'·dw, g·Cog + o] += x[n, i, j, k] · w[a, b', o, k]   (k in group g)
    y = y_full without P_top rows on top, P_bottom at the bottom (likewise left/right) + b

**Weights from PyTorch and ONNX**, whose layout is ``(C_in, C_out/groups, kh, kw)``:
``w = w_torch.transpose(2, 3, 1, 0)`` — the same move as a convolution's OIHW → HWIO, because
their tensor *is* the weight of that convolution in OIHW.

``padding`` is an int, a pair or explicit ``((top, bottom), (left, right))`` (ONNX's asymmetric
pads); it removes rows of the full output.  ``output_padding`` adds rows at the bottom/right that
only the bias reaches (or the dilated taps), as PyTorch's; it must be smaller than the stride or
the dilation.  The geometry is :func:`convnet.ops.geometry.conv_transpose_geometry`.

With numba and NumPy arrays, an ungrouped forward runs the fast convolution's ``dx`` path
(:func:`convnet.ops.fast.columns.dx_by_columns`: blocks of column gradients in a reused buffer,
the compiled col2im gather); otherwise the readable one
(:func:`convnet.ops.conv.conv2d_data_grad`: one GEMM per group, col2im's slice adds).

Example (a 2×-upsampling layer of a DCGAN: 4×4 kernel, stride 2, padding 1)::

    >>> x = np.ones((1, 4, 4, 8)); w = np.ones((4, 4, 3, 8))
    >>> conv_transpose2d_forward(x, w, stride=2, padding=1)[0].shape
    (1, 8, 8, 3)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from . import kernels
from .checks import check_grad_shape, check_nhwc, check_same_dtype
from .conv import DEFAULT_WORKSPACE_BYTES, conv2d_data_grad
from .fast import PlannedConvCache, conv2d_backward, conv_plan, run_forward
from .fast.columns import dx_by_columns
from .geometry import Geometry2D, conv_transpose_geometry, is_int


@dataclass
class ConvTransposeCache:
    """What backward needs: the input and the weights (references), the geometry."""

    x: object
    w: object
    geom: Geometry2D  # of the convolution whose dx the forward is (size: Ho, out: H)
    groups: int
    has_bias: bool
    workspace_bytes: int


def check_conv_transpose_args(x, w, b, groups, op="conv_transpose2d"):
    """Validate ranks, dtypes, channel counts and groups; return ``(C_in, C_out)``."""
    check_nhwc(x, op)
    check_same_dtype(op, x, w=w, b=b)
    if w.ndim != 4 or min(w.shape) < 1:
        raise ShapeError(f"{op}: `w` must have rank 4 (kh, kw, C_out/groups, C_in) with every size positive; "
                         f"received shape {tuple(w.shape)}.")
    if not is_int(groups) or groups < 1:
        raise ConfigError(f"{op}: `groups` must be a positive integer; received {groups!r}.")
    groups = int(groups)
    c_in = x.shape[3]
    if w.shape[3] != c_in:
        raise ShapeError(f"{op}: `w` has {w.shape[3]} input channels (its last axis) but x has C_in={c_in}; "
                         f"expected w of shape ({w.shape[0]}, {w.shape[1]}, C_out/groups, {c_in}).")
    if c_in % groups:
        raise ConfigError(f"{op}: input channels C_in={c_in} must be divisible by groups={groups}; received x of "
                          f"shape {tuple(x.shape)}.")
    c_out = w.shape[2] * groups
    if b is not None and tuple(b.shape) != (c_out,):
        raise ShapeError(f"{op}: `b` must have shape ({c_out},) to match C_out={c_out}; received shape "
                         f"{tuple(b.shape)}.")
    return c_in, c_out


def conv_transpose2d_forward(
    x,
    w,
    b=None,
    *,
    stride=1,
    padding=0,
    output_padding=0,
    dilation=1,
    groups=1,
    workspace_bytes=DEFAULT_WORKSPACE_BYTES,
    layer="conv_transpose2d",
):
    """Transposed convolution of an NHWC batch: returns ``(y, cache)`` (see the module docstring
    for the shapes and the weight layout)."""
    _, c_out = check_conv_transpose_args(x, w, b, groups, layer)
    geom = conv_transpose_geometry(x.shape[1:3], w.shape[:2], stride=stride, padding=padding,
                                   output_padding=output_padding, dilation=dilation, layer=layer)
    out_shape = (x.shape[0], geom.height.size, geom.width.size, c_out)
    if int(groups) == 1 and kernels.usable(x, w):
        y = dx_by_columns(x, w, geom, out_shape, int(workspace_bytes))
    else:
        y = conv2d_data_grad(x, w, geom, out_shape, groups=int(groups), workspace_bytes=int(workspace_bytes))
    if b is not None:
        y += b
    return y, ConvTransposeCache(x, w, geom, int(groups), b is not None, int(workspace_bytes))


def backward_plan(geom: Geometry2D, out_shape, w_shape, dtype, groups: int, workspace_bytes: int, array_module=np):
    """The plan of the convolution that backward runs on ``dy (out_shape)``: its forward is ``dx``,
    its weight gradient ``dw`` (:func:`convnet.ops.fast.conv_plan`; ``fit="crop"``: the
    ``output_padding`` rows are read by no window)."""
    return conv_plan(out_shape, w_shape, dtype, stride=geom.stride, padding=geom.pads, dilation=geom.dilation,
                     groups=groups, fit="crop", workspace_bytes=workspace_bytes, array_module=array_module,
                     layer="conv_transpose2d_backward")


def conv_transpose2d_backward(dy, cache: ConvTransposeCache, *, need_dx=True):
    """Gradients ``(dx, dw, db)``; ``db`` is None without a bias, ``dx`` None with ``need_dx=False``."""
    x, w, geom = cache.x, cache.w, cache.geom
    xp = get_array_module(x)
    n, h, wd, c_in = x.shape
    out_shape = (n, geom.height.size, geom.width.size, w.shape[2] * cache.groups)
    check_grad_shape(dy, out_shape, "conv_transpose2d_backward")
    check_same_dtype("conv_transpose2d_backward", x, dy=dy)
    dy = xp.ascontiguousarray(dy)
    plan = backward_plan(geom, out_shape, w.shape, x.dtype, cache.groups, cache.workspace_bytes, xp)
    db = dy.sum(axis=(0, 1, 2)) if cache.has_bias else None
    # an output_padding of at least the stride (possible when the dilation is larger) gives the
    # convolution more output rows than x has: x's gradient is their top-left part, and x counts
    # as zero beyond it for dw
    ho_c, wo_c = plan.geom.out_hw
    x_c = x
    if (ho_c, wo_c) != (h, wd):
        x_c = xp.zeros((n, ho_c, wo_c, c_in), dtype=x.dtype)
        x_c[:, :h, :wd] = x
    _, dw, _ = conv2d_backward(x_c, PlannedConvCache(dy, w, False, plan), need_dx=False)
    dx = None
    if need_dx:
        dx = run_forward(plan, dy, w)
        if (ho_c, wo_c) != (h, wd):
            dx = xp.ascontiguousarray(dx[:, :h, :wd])
    return dx, dw, db
