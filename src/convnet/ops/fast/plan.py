"""The plan of a convolution: the one place where its algorithms are chosen.

For one layer shape — batch, input, weights, dtype, hyperparameters, array module, compiled
kernels on or off — :func:`conv_plan` decides

* ``algorithm``: how forward runs (``gemm1x1``, ``direct``, ``smallmap``, ``winograd4``,
  ``winograd2``, ``im2col``: :func:`choose_algorithm`);
* ``dx``: how the data gradient is computed — ``gemm1x1``, ``smallmap``, ``winograd`` (the same
  transforms on ``dy`` with the rotated filter), ``planes`` (few input channels), ``convolution``
  (stride 1: the convolution of ``dy`` with the rotated filter, itself planned: ``dx_conv``),
  ``phases`` (strided, dw by its direct kernel: one stride-1 direct convolution of ``dy`` per
  phase of ``dx``'s rows and columns, :func:`convnet.ops.kernels.direct.data_grad_by_phases`) or
  ``col2im`` (column gradients ``dy @ wᵀ`` added back by col2im);
* ``dw``: how the weight gradient is computed — ``gemm1x1``, ``smallmap``, ``winograd`` (back
  through the transforms), ``direct`` (its compiled kernel) or ``columns`` (im2col of ``x`` block
  by block, ``colsᵀ @ dy``);
* ``forward`` and ``backward``: the bytes of temporaries each pass needs (:class:`Workspace`).

:mod:`convnet.ops.fast.conv` executes a plan; :mod:`convnet.analysis.explain` and the memory model
(:mod:`convnet.analysis.footprint`) read it.  Plans are kept per set of arguments, so an op call
looks its plan up instead of making it.  The thresholds of the rules were set by timing on one CPU;
``docs/tuning.md`` says which depend on the CPU, and the timings behind them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...errors import ConfigError
from .. import kernels
from ..conv import DEFAULT_WORKSPACE_BYTES, check_algorithm
from ..geometry import Geometry2D, conv_geometry
from ..kernels import direct
from . import smallmap, tuning, winograd
from .columns import first_block_bytes, planes_bytes

#: the most output values of one image for which the direct weight-gradient kernel runs
DIRECT_DW_MAX_VALUES = 1 << 18
#: a strided 1×1 layer runs forward by the direct kernel (where this CPU has one for K) from this
#: many output channels on: three pixels × 128 sums fill AVX-512's registers and beat the copy of
#: the pixels read plus OpenBLAS's GEMM; K = 64's blocks lost as often as they won — while its
#: weights stay in a core's first-level cache (C·K at most this many values: 32 KiB of float32;
#: from C = 128 on the GEMM won or tied, docs/tuning.md)
DIRECT_1X1_MIN_K = 128
DIRECT_1X1_MAX_WEIGHTS = 64 * 128
#: plans kept between calls (a net has a few dozen layer shapes; the table is emptied when full)
MAX_PLANS = 512


# -- the rules ------------------------------------------------------------------------------------
def direct_applicable(k: int, groups: int, *, numpy: bool = True) -> bool:
    """A compiled direct-convolution kernel exists: NumPy arrays, numba on, ungrouped, K in the table."""
    return numpy and groups == 1 and kernels.enabled() and direct.supports(k)


def direct_pays(c: int, k: int, stride: tuple = (1, 1)) -> bool:
    """The direct loops beat im2col's GEMM, which has only K columns (and only kh·kw·C rows of
    weights on an RGB input): K ≤ 16; K ≤ 32 with C ≤ 32; K = 64 on an RGB-like input (C ≤ 4),
    or from C ≤ 32 at stride 2 or more (a CIFAR ResNet's downsampling: im2col's copy of a quarter
    of the pixels, nine times, costs as much as its GEMM)."""
    return k <= 16 or (k <= 32 and c <= 32) or (k == 64 and (c <= 4 or (c <= 32 and min(stride) >= 2)))


def direct_dw_pays(geom: Geometry2D, k: int) -> bool:
    """The weight-gradient kernel reads one image's ``dy`` once per tap and block of channels: it
    pays while that stays in the core's cache (at most 1 MiB of float32: to 64×64×64 outputs)."""
    ho, wo = geom.out_hw
    return ho * wo * k <= DIRECT_DW_MAX_VALUES


def dx_by_planes_pays(c: int, groups: int) -> bool:
    """An RGB or grey input (C ≤ 3), ungrouped: ``dx`` by channel planes, whose slice adds are runs
    of W values where col2im's are runs of C."""
    return c <= 3 and groups == 1


def dx_by_columns_pays(c: int, k: int, *, numpy: bool = True) -> bool:
    """Stride 1, NumPy arrays, numba on: ``dx`` from column gradients (``dy @ wᵀ``, BLAS reads the
    transpose in place) and the compiled col2im instead of the convolution of ``dy`` with the
    rotated filter — from C·K ≥ 128·256 on, where the rotated, transposed copy of the weights costs
    as much as the GEMM and the wide GEMM is the faster one.  ``numpy``: the arrays are NumPy arrays."""
    return c * k >= 128 * 256 and numpy and kernels.enabled()


def transposed_pads(geom: Geometry2D):
    """Pads that make a stride-1 convolution of ``dy`` with the rotated filter give ``dx``
    exactly (None when one would be negative: then col2im is used)::

        top' = F' - 1 - P_top,   bottom' = H - Ho + P_top   (F' the dilated extent)
    """
    out = []
    for ax in (geom.height, geom.width):
        before = ax.effective_kernel - 1 - ax.pad_before
        after = ax.size - ax.out + ax.pad_before
        if before < 0 or after < 0:
            return None
        out.append((before, after))
    return tuple(out)


def choose_algorithm(
    geom: Geometry2D, c: int, k: int, groups: int, requested: str = "auto", *, n: int = 1, numpy: bool = True
) -> str:
    """The algorithm a convolution of ``n`` samples runs with.

    ``"auto"`` takes the first that applies:

    * ``gemm1x1`` — 1×1, unpadded, ungrouped: a plain GEMM ``(N·H·W, C) @ (C, K)`` (strided: of the
      pixels read, copied out first; ``dx`` scattered back onto them) — except a strided one with
      K ≥ :data:`DIRECT_1X1_MIN_K`, C·K ≤ :data:`DIRECT_1X1_MAX_WEIGHTS` and a direct kernel for K
      on this CPU: ``direct`` at inference (a forward for backward and the backward stay
      gemm1x1's: :func:`convnet.ops.fast.conv.forward_for_backward`);
    * ``direct`` — narrow layers (:func:`direct_pays`), numba on, NumPy arrays: compiled loops, as
      im2col's GEMM with few columns runs far below BLAS's peak;
    * ``smallmap`` — maps so small that most taps read the zero padding
      (:func:`convnet.ops.fast.smallmap.pays`): only the taps inside the image are multiplied;
    * ``winograd4`` — 3×3 stride 1 (C·K ≥ 32·32) when F(4×4, 3×3)'s multiply count, overheads
      included, is at most half of im2col's ``9·N·Ho·Wo·C·K``, that one weighted by ``1 + 32/K``
      (a GEMM with few columns runs below the roofline)::

          36·T·C·K  (the α² GEMMs over T = N·⌈Ho/4⌉·⌈Wo/4⌉ tiles, padding waste included)
          + 324·C·K  (filter transform) + T·(1296·C + 576·K)  (input and output transforms)

      The transform terms are the Kronecker GEMMs'; the compiled transforms do about a third of
      that, and the rest stands for what a multiply count misses (the filter transform's α²·C·K
      writes, thin GEMMs over few tiles) — which keeps im2col for 7×7 and 14×14 maps of one image.
      ``winograd2`` instead where there are few tiles (T ≤ 64) of a wide layer (C·K ≥ 512·512):
      its filter transform writes 16 matrices instead of 36 and its GEMMs are larger;
    * ``winograd2`` — where F(4,3) misses the bound at C·K ≥ 512·512 but F(2,3)'s own count
      (:func:`convnet.ops.fast.winograd.multiplies`) meets it;
    * ``im2col`` — everything else.

    A requested algorithm that does not apply to the layer raises ConfigError; ``numpy=False``
    (CuPy arrays) rules out ``direct``.
    """
    return _choose(geom, c, k, groups, requested, n, numpy)[0]


def _one_by_one(geom: Geometry2D, groups: int) -> bool:
    """A 1×1, unpadded, ungrouped convolution: a GEMM of the pixels it reads."""
    return geom.kernel == (1, 1) and not geom.has_padding and groups == 1


def _choose(geom: Geometry2D, c, k, groups, requested, n, numpy) -> tuple[str, str]:
    """``(algorithm, why)``: :func:`choose_algorithm` with its reason."""
    check_algorithm(requested)
    one_by_one = _one_by_one(geom, groups)
    if requested != "auto":
        _check_applies(requested, geom, k, groups, numpy, one_by_one)
        return requested, "requested"
    if one_by_one:
        if geom.stride == (1, 1):
            return "gemm1x1", "1×1, stride 1, unpadded: a plain GEMM"
        if direct_applicable(k, groups, numpy=numpy) and k >= DIRECT_1X1_MIN_K and c * k <= DIRECT_1X1_MAX_WEIGHTS:
            return "direct", (f"1×1, stride {geom.stride[0]}×{geom.stride[1]}, unpadded, K={k}: the direct kernel "
                              "reads the pixels in place (a GEMM needs them copied out)")
        return "gemm1x1", f"1×1, stride {geom.stride[0]}×{geom.stride[1]}, unpadded: a GEMM of the pixels read"
    if direct_applicable(k, groups, numpy=numpy) and direct_pays(c, k, geom.stride):
        return "direct", f"narrow layer (C={c}, K={k}): im2col's GEMM would have {k} columns"
    if smallmap.pays(geom, n, groups):
        return "smallmap", f"{smallmap.inside_fraction(geom):.0%} of the taps inside the image"
    if winograd.winograd_applicable(geom, groups) and c * k >= 32 * 32:
        ho, wo = geom.out_hw
        t = n * (-(-ho // 4)) * (-(-wo // 4))
        count = 36 * t * c * k + 324 * c * k + t * (1296 * c + 576 * k)
        thin = 1 + 32 / k  # im2col's GEMM has only K columns: narrow ones run far below the roofline
        budget = 0.5 * thin * 9 * n * ho * wo * c * k
        why = f"F(4,3) counts {count / budget / 2:.2f}× im2col's weighted multiplies (at most 0.5 pays)"
        if count <= budget:
            if t <= 64 and c * k >= 512 * 512:
                return "winograd2", why + f"; {t} tiles of a wide layer: F(2,3)"
            return "winograd4", why
        # few tiles of a wide layer: F(2,3)'s larger GEMMs and cheaper filter transform
        tiled = numpy and kernels.enabled()
        if c * k >= 512 * 512 and winograd.multiplies(n, (ho, wo), c, k, 2, tiled=tiled) <= budget:
            return "winograd2", why + "; F(2,3)'s own count meets it"
        return "im2col", why
    return "im2col", "no faster algorithm applies"


def _check_applies(requested, geom: Geometry2D, k, groups, numpy, one_by_one):
    """Raise ConfigError when the ``requested`` algorithm cannot run this layer."""
    if requested == "direct" and not direct_applicable(k, groups, numpy=numpy):
        raise ConfigError(
            f"algorithm='direct' needs numba (pip install convnet[fast]), NumPy arrays, groups=1 and K in "
            f"{sorted(direct.kernels_here())}; received K={k}, groups={groups}."
        )
    if requested == "smallmap" and groups != 1:
        raise ConfigError(f"algorithm='smallmap' needs an ungrouped convolution; received groups={groups}.")
    if requested == "gemm1x1" and not one_by_one:
        raise ConfigError(
            f"algorithm='gemm1x1' needs a 1×1, unpadded, ungrouped convolution; received kernel {geom.kernel}, "
            f"pads {geom.pads}, groups {groups}."
        )
    if requested.startswith("winograd") and not winograd.winograd_applicable(geom, groups):
        raise ConfigError(
            f"algorithm={requested!r} needs a 3×3, stride-1, undilated, ungrouped convolution with padding <= 2; "
            f"received kernel {geom.kernel}, stride {geom.stride}, dilation {geom.dilation}, groups {groups}, "
            f"pads {geom.pads}."
        )


# -- the plan -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workspace:
    """Bytes of temporaries while one pass runs, beyond its inputs, outputs and the cache."""

    #: buffers alive through the pass: reused ones (:mod:`convnet.ops.scratch`, of the plan's
    #: ``scratch_kind``), or, where the kind is "", temporaries freed when the op returns
    scratch: int = 0
    #: temporaries freed when the op returns even where the scratch is reused
    temp: int = 0
    #: the scratch in use while ``temp`` lives, where that is an earlier, smaller phase of the pass
    #: (Winograd's backward: dx with its rotated filter, then dw); None: all of ``scratch``
    temp_scratch: int | None = None
    #: what the bytes are: ``((name, bytes), ...)`` of the pass's buffers, phase by phase
    parts: tuple = ()

    @property
    def total(self) -> int:
        return self.scratch + self.temp


@dataclass(frozen=True)
class ConvPlan:
    """How a convolution of one shape runs, forward and backward, and the memory it needs."""

    x_shape: tuple  # (N, H, W, C)
    w_shape: tuple  # (kh, kw, C / groups, K)
    itemsize: int
    geom: Geometry2D
    groups: int
    workspace_bytes: int
    numpy: bool  # NumPy arrays (False: CuPy)
    compiled: bool  # the numba kernels run: NumPy arrays, numba installed and on
    algorithm: str  # forward: gemm1x1, direct, smallmap, winograd2, winograd4, im2col
    dx: str  # gemm1x1, smallmap, winograd, planes, convolution, col2im ("" for a forward-only plan)
    dw: str  # gemm1x1, smallmap, winograd, direct, columns ("" for a forward-only plan)
    #: dx == "convolution": the (forward-only) plan of the convolution of dy with the rotated filter
    dx_conv: ConvPlan | None
    forward: Workspace
    backward: Workspace
    #: the scratch family the buffers come from ("im2col", "winograd"), "" for plain temporaries
    scratch_kind: str
    multiplies: int  # scalar multiplies of the forward pass, transforms included
    reason: str
    #: who chose ``algorithm``: "cost model" (:func:`choose_algorithm`), "tuned" (timed on this
    #: machine: :mod:`convnet.ops.fast.tuning`) or "requested" (the layer's ``algorithm=``)
    source: str = "cost model"

    @property
    def cache_bytes(self) -> int:
        """Bytes a training forward's cache owns beyond its references: a strided 1×1's pixels read,
        copied out once for the forward and dw's GEMMs (:func:`~convnet.ops.fast.conv.forward_for_backward`)."""
        if self.dw != "gemm1x1" or self.geom.stride == (1, 1):
            return 0
        return self.x_shape[0] * self.geom.out_hw[0] * self.geom.out_hw[1] * self.x_shape[3] * self.itemsize

    @property
    def im2col_multiplies(self) -> int:
        """im2col's count: every tap of every window, ``N·Ho·Wo·kh·kw·(C/groups)·K``."""
        n, (ho, wo), (kh, kw, cg, k) = self.x_shape[0], self.geom.out_hw, self.w_shape
        return n * ho * wo * kh * kw * cg * k


_PLANS: dict = {}


def conv_plan(x_shape, w_shape, dtype, *, stride=1, padding=0, dilation=1, groups=1, fit="error", algorithm="auto",
              workspace_bytes=DEFAULT_WORKSPACE_BYTES, array_module=np, layer="conv2d") -> ConvPlan:
    """The :class:`ConvPlan` of a convolution of an ``x_shape`` NHWC batch by ``w_shape`` HWIO weights
    (the arguments as :func:`convnet.ops.fast.conv2d_forward` takes them; ``array_module``: NumPy, or
    CuPy).  Raises GeometryError or ConfigError (naming ``layer``) for a geometry or an algorithm that
    cannot be; shapes and dtypes are not checked here (the op does).  With ``algorithm="auto"`` a
    shape timed on this machine (:mod:`convnet.ops.fast.tuning`, unless ``CONVNET_TUNE=0``) runs
    with its winner, any other with the cost model's choice; ``plan.source`` says which decided.
    """
    numpy = array_module is np
    compiled = numpy and kernels.enabled()
    key = (tuple(x_shape), tuple(w_shape), np.dtype(dtype).itemsize, stride, padding, dilation, groups, fit,
           algorithm, workspace_bytes, numpy, compiled, compiled and kernels.vector_isa())
    try:
        plan = _PLANS.get(key)
    except TypeError:  # a list among the arguments: plan without keeping it
        key, plan = None, None
    if plan is None:
        geom = conv_geometry(x_shape[1:3], w_shape[:2], stride=stride, padding=padding, dilation=dilation, fit=fit,
                             layer=layer)
        args = (tuple(x_shape), tuple(w_shape), np.dtype(dtype).itemsize, geom, int(groups))
        tuned = None
        if algorithm == "auto" and numpy:  # a shape timed on this machine runs with its winner
            tuned = tuning.lookup(x_shape, w_shape, dtype, geom, groups, compiled,
                                  dict(stride=stride, padding=padding, dilation=dilation, groups=groups, fit=fit,
                                       workspace_bytes=workspace_bytes))
        plan = None
        if tuned is not None:
            try:
                plan = _make_plan(*args, tuned, int(workspace_bytes), numpy, compiled)
            except ConfigError:  # a cache entry that no longer applies: the cost model decides
                plan = None
            else:
                plan = replace(plan, source="tuned", reason="tuned on this machine" + plan.reason[len("requested"):])
        if plan is None:
            plan = _make_plan(*args, algorithm, int(workspace_bytes), numpy, compiled)
            if algorithm != "auto":
                plan = replace(plan, source="requested")
        if key is not None:
            if len(_PLANS) >= MAX_PLANS:
                _PLANS.clear()
            _PLANS[key] = plan
    return plan


def clear_plans() -> None:
    """Forget the kept plans (after changing a rule or the tuning cache, as tests do)."""
    _PLANS.clear()


def _make_plan(x_shape, w_shape, item, geom, groups, requested, cap, numpy, compiled, *, backward=True) -> ConvPlan:
    n, _, _, c = x_shape
    kh, kw, _, k = w_shape
    algorithm, reason = _choose(geom, c, k, groups, requested, n, numpy)
    dx = dw = ""
    dx_conv = None
    if backward:
        dx, dw = _gradients(algorithm, geom, c, k, groups, compiled)
        if dx == "convolution":  # dy (N, Ho, Wo, K) by the rotated filter (kh, kw, K, C), stride 1
            sub = "direct" if algorithm == "direct" and direct_applicable(c, 1) and direct_pays(k, c) else "im2col"
            dy_geom = conv_geometry(geom.out_hw, geom.kernel, padding=transposed_pads(geom), dilation=geom.dilation)
            dx_conv = _make_plan((n, *geom.out_hw, k), (kh, kw, k, c), item, dy_geom, 1, sub, cap, numpy, compiled,
                                 backward=False)
        reason += f"; dx: {dx}, dw: {dw}"
    kind = {"gemm1x1": "", "smallmap": "", "winograd2": "winograd", "winograd4": "winograd"}.get(algorithm, "im2col")
    args = (x_shape, w_shape, item, geom, groups, cap, compiled)
    fwd, bwd, mults = _counts(algorithm, dx, dw, dx_conv, *args)
    return ConvPlan(x_shape, w_shape, item, geom, groups, cap, numpy, compiled, algorithm, dx, dw, dx_conv, fwd, bwd,
                    kind, mults, reason)


def _gradients(algorithm, geom: Geometry2D, c, k, groups, compiled) -> tuple[str, str]:
    """``(dx, dw)``: how backward computes each gradient."""
    if algorithm in ("gemm1x1", "smallmap"):
        return algorithm, algorithm
    if algorithm == "direct" and _one_by_one(geom, groups):  # gemm1x1's backward (direct runs inference)
        return "gemm1x1", "gemm1x1"
    if algorithm.startswith("winograd"):
        return "winograd", "winograd"
    dw = ("direct" if algorithm == "direct" and direct.supports_weight_grad(k) and direct_dw_pays(geom, k)
          else "columns")
    if dx_by_planes_pays(c, groups):
        return "planes", dw
    if dw == "direct" and direct.supports_data_grad_by_phases(c, geom.kernel, geom.stride, geom.dilation, groups):
        # (where dw is im2col's columns, the one pass over them that also gives dx was as fast)
        return "phases", dw
    stride1 = groups == 1 and geom.stride == (1, 1) and transposed_pads(geom) is not None
    if dw == "direct":  # (a direct layer has NumPy arrays and numba on)
        return ("convolution" if stride1 and not dx_by_columns_pays(c, k) else "col2im"), dw
    return ("convolution" if stride1 and not dx_by_columns_pays(c, k, numpy=compiled) else "col2im"), dw


def _counts(algorithm, dx, dw, dx_conv, x_shape, w_shape, item, geom, groups, cap, compiled):
    """``(forward, backward, multiplies)``: the :class:`Workspace` of each pass and the forward's multiplies."""
    n, h, wd, c = x_shape
    kh, kw, _, k = w_shape
    ho, wo = geom.out_hw
    taps = n * ho * wo * kh * kw * (c // groups) * k
    if algorithm == "gemm1x1" or dw == "gemm1x1":  # (or a 1×1 that direct runs at inference)
        if geom.stride == (1, 1):
            return Workspace(), Workspace(), n * h * wd * c * k
        # the pixels read, copied out (forward; kept in the cache for dw: ConvPlan.cache_bytes;
        # direct reads them in place); dx: the column gradients before their scatter
        read = n * ho * wo * c * item
        fwd = Workspace() if algorithm == "direct" else Workspace(temp=read, parts=(("the pixels read", read),))
        bwd = Workspace(temp=read, parts=(("dx: the gradients of the pixels read", read),))
        return fwd, (bwd if dx else Workspace()), n * ho * wo * c * k
    if algorithm == "smallmap":
        out = smallmap.workspace(n, geom, c, k, item)
        fwd = Workspace(out, parts=(("pixel-major output and one product", out),))
        # dx: one run's product; dw: one tap's stacked inputs and output gradients (at most every pixel's)
        run, stacked = n * kw * c * item, n * ho * wo * (c + k) * item
        bwd = Workspace(run + stacked, parts=(("dx: one run's product", run), ("dw: one tap's pixels", stacked)))
        return fwd, (bwd if dx else Workspace()), smallmap.multiplies(n, geom, c, k)
    if algorithm.startswith("winograd"):
        m = int(algorithm[-1])
        vm = winograd.workspace(n, (ho, wo), c, k, m, item, cap, tiled=compiled)
        u = winograd.filter_bytes(c, k, m, item)
        fwd = Workspace(vm, u, parts=(("V and M of a block of tiles", vm), ("transformed filter U", u)))
        # dx: the forward on dy with the rotated filter's U; then dw: V, dM and dU (U freed before
        # dw grows the buffers)
        dx_vm = winograd.workspace(n, (h, wd), k, c, m, item, cap, tiled=compiled)
        dw_vm = winograd.dw_workspace(n, (ho, wo), c, k, m, item, cap, tiled=compiled)
        bwd = Workspace(max(dx_vm, dw_vm), u, dx_vm,
                        parts=(("dx: V and M", dx_vm), ("dx: rotated U", u), ("dw: V, dM and dU", dw_vm)))
        return fwd, (bwd if dx else Workspace()), winograd.multiplies(n, (ho, wo), c, k, m, tiled=compiled)
    # im2col and direct: a padded copy of x (when P > 0) and one reused block of columns
    pad = n * geom.height.padded_size * geom.width.padded_size * c * item if geom.has_padding else 0
    block = first_block_bytes(n, ho, wo * kh * kw * c * item, kh * kw * (c // groups) * k * item, cap)
    grouped = 2 * block if groups > 1 else 0  # the batched matmul's per-group copies
    fwd = Workspace() if algorithm == "direct" else Workspace(  # direct: no padded copy, no columns
        pad + block + grouped, parts=(("padded x", pad), ("a block of columns", block), ("group copies", grouped)))
    if not dx:
        return fwd, Workspace(), taps
    dw_bytes = kh * kw * c * k * 8 if dw == "direct" else pad + block  # float64 sums, or padded x and columns
    dw_part = ("dw: float64 sums" if dw == "direct" else "dw: padded x and a block of columns", dw_bytes)
    if dx == "planes":  # dw, then dx from the planes of a chunk of images (dw's buffers still held)
        planes = planes_bytes(n, geom, c, item, cap)
        bwd = Workspace(dw_bytes, planes, parts=(dw_part, ("dx: column gradients and planes of a chunk", planes)))
    elif dx == "phases":  # dw's kernel, then dx by the direct kernel (only the phases' flipped taps)
        flipped = kh * kw * c * k * item
        bwd = Workspace(dw_bytes, flipped, parts=(("dx: the phases' flipped taps", flipped), dw_part))
    elif dx == "convolution":  # the convolution of dy, then dw
        conv = dx_conv.forward.scratch
        bwd = Workspace(max(conv, dw_bytes), parts=((f"dx: {dx_conv.algorithm} of dy", conv), dw_part))
    elif dw == "direct":  # dw's kernel, then dx by column gradients a block at a time
        bwd = Workspace(max(dw_bytes, block), parts=(dw_part, ("dx: a block of column gradients", block)))
    else:  # one loop: padded x and dx throughout (counted even where the compiled col2im needs no
        # padded dx), a block of columns and one of their gradients
        bwd = Workspace(2 * pad + 2 * block + grouped, parts=(("padded x and dx", 2 * pad),
                                                              ("columns and their gradients", 2 * block),
                                                              ("group copies", grouped)))
    return fwd, bwd, taps
