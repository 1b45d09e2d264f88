"""Convolution, fast: the op of :mod:`convnet.ops.conv` with the same signature, run by a plan.

:func:`conv_plan` chooses, per layer shape, the forward algorithm (plain GEMM for 1×1, compiled
direct loops for narrow layers, a GEMM per pixel for tiny maps, Winograd F(4,3) / F(2,3),
im2col in blocks), how ``dx`` and ``dw`` are computed, and the memory each pass needs;
:func:`conv2d_forward` / :func:`conv2d_backward` run it.  The layers call this op;
:mod:`convnet.ops.conv` is the readable one the tests compare it with.

Modules: ``plan.py`` (the rules and the plan), ``conv.py`` (the op), ``columns.py`` (im2col in
blocks, the column-gradient ways to ``dx``), ``winograd.py``, ``smallmap.py``; the compiled loops
are in :mod:`convnet.ops.kernels`, the reused buffers in :mod:`convnet.ops.scratch`.
"""
from ..conv import ALGORITHMS, DEFAULT_WORKSPACE_BYTES
from . import tuner  # registers the tuner of CONVNET_TUNE=auto with the plan's cache (tuning.py)
from .conv import PlannedConvCache, conv2d_backward, conv2d_forward, forward_for_backward, run_forward
from .plan import (
    ConvPlan,
    Workspace,
    choose_algorithm,
    clear_plans,
    conv_plan,
    direct_applicable,
    direct_pays,
    dx_by_columns_pays,
    dx_by_planes_pays,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_WORKSPACE_BYTES",
    "ConvPlan",
    "PlannedConvCache",
    "Workspace",
    "choose_algorithm",
    "clear_plans",
    "conv2d_backward",
    "conv2d_forward",
    "conv_plan",
    "direct_applicable",
    "direct_pays",
    "dx_by_columns_pays",
    "dx_by_planes_pays",
    "forward_for_backward",
    "run_forward",
]
