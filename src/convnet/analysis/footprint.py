"""What each layer keeps for backward and how much scratch memory it needs.

This is the per-layer half of the memory model (:mod:`convnet.analysis.memory`
walks the graph).  It mirrors what the layers in :mod:`convnet.layers` do:

==============  ==========================================  ======================================
layer           cached for backward                         scratch (beyond input, output, dx)
==============  ==========================================  ======================================
CONV            a reference to its input x                  padded copy of x (if P > 0; not for
                                                            the direct algorithm) and one
                                                            block of im2col columns (2 MiB or 8×
                                                            the weights, at most ``workspace_bytes``); backward:
                                                            padded x and dx, a block of columns
                                                            and one of their gradient (stride 1:
                                                            padded dy and its columns instead);
                                                            Winograd: V and M of one block of
                                                            tiles (NumPy: of one batch chunk),
                                                            and the transformed filter α²·C·K
MAXPOOL         switches: 1 byte (uint8) per output         padded x (if P > 0), 2 bool masks
FRACPOOL        int64 argmax per output                     index and value candidates
AVGPOOL         shapes only                                 padded x (if P > 0)
L2POOL          references to x and y                       padded x and x² (forward)
RELU            a reference to its output y                 backward: a bool mask (NumPy only)
BN              a reference to its input x                  NumPy only: forward one activation
                                                            (variance), backward one (x · b)
DROPOUT         a bool mask (1 byte per element)            forward: the float64 uniform draw
FC              a reference to its input x                  none
LRN             a reference to x and the scale s            forward: x²; backward: ~4 activations
GAP, FLATTEN    shapes only                                 FLATTEN returns a view (no copy)
ADD / CONCAT    nothing                                     ADD backward passes dy itself on
==============  ==========================================  ======================================

The numbers are estimates of NumPy's temporaries, good to the ±20% that the
tests ask of a whole training step; the cached part is exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Footprint:
    """Memory behaviour of one layer for a whole batch (bytes)."""

    keeps_input: bool = False  # the cache references the input array(s)
    keeps_output: bool = False  # the cache references the output array
    cache_bytes: int = 0  # arrays the cache owns (switches, masks, LRN scale)
    forward_scratch: int = 0  # temporaries alive while forward runs, beyond input and output
    #: forward temporaries freed when the op returns even where ``scratch_kind`` pools the rest
    forward_temp: int = 0
    backward_scratch: int = 0  # temporaries alive while backward runs, beyond dy, dx and the cache
    #: backward temporaries freed when the op returns even where ``scratch_kind`` pools the rest
    backward_temp: int = 0
    #: the pooled scratch in use while ``backward_temp`` lives, where that is an earlier, smaller
    #: phase of backward (Winograd: dx with its rotated filter, then dw); None: all of it
    backward_temp_scratch: int | None = None
    output_is_view: bool = False  # the output shares the input's memory (FLATTEN, DROPOUT at inference)
    dx_is_dy: bool = False  # backward hands dy itself to every input (ADD), or a view of it (FLATTEN)
    #: the scratch comes from reused buffers (convnet.ops.scratch) of this family ("winograd",
    #: "im2col"), which stay held after the layer; "" = temporaries freed when the op returns
    scratch_kind: str = ""


def _padded(shape, geom) -> int:
    """Elements of the padded per-sample input (0 when there is no padding)."""
    if not geom.has_padding:
        return 0
    return geom.height.padded_size * geom.width.padded_size * shape[2]


def _first_block(n, ho, row_bytes, cap, weight_bytes) -> int:
    """Bytes of the largest (first) block of im2col columns, as :mod:`convnet.ops.conv` cuts them."""
    from ..ops.conv import block_target
    from ..ops.im2col import column_blocks

    n0, n1, h0, h1 = next(column_blocks(n, ho, row_bytes, block_target(weight_bytes, cap)))
    return (n1 - n0) * (h1 - h0) * row_bytes


def _conv(layer, ins, out, n, item, train) -> Footprint:
    from ..ops.conv import choose_algorithm

    h, w, c = ins[0]
    ho, wo, k = out
    kh, kw = layer.kernel_size
    geom = layer.geometry(ins[0])
    cap = getattr(layer, "workspace_bytes", 64 * 2**20)
    algorithm = choose_algorithm(geom, c, k, layer.groups, getattr(layer, "algorithm", "auto"), n=n)
    per_sample_cols = ho * wo * kh * kw * c * item
    pad = n * _padded(ins[0], geom) * item
    if algorithm == "gemm1x1":
        return Footprint(keeps_input=train)
    if algorithm == "smallmap":
        # forward: the pixel-major output and one GEMM's product; backward: one tap's stacked
        # inputs and output gradients (at most every pixel's) and one run's product
        from ..ops import smallmap

        bwd = n * ho * wo * (c + k) * item + n * kw * c * item
        return Footprint(keeps_input=train, forward_scratch=smallmap.workspace(n, geom, c, k, item),
                         backward_scratch=bwd)
    if algorithm.startswith("winograd"):
        # V and M of one block of tiles (compiled) or one batch chunk (NumPy), pooled, and the
        # transformed filter U, made each call; backward: the forward of dy with the rotated
        # filter's U for dx, then dw's V, dM and dU
        from ..ops import winograd

        m = int(algorithm[-1])
        fwd = winograd.workspace(n, (ho, wo), c, k, m, item, cap)
        dx = winograd.workspace(n, (h, w), k, c, m, item, cap)
        bwd = max(dx, winograd.dw_workspace(n, (ho, wo), c, k, m, item, cap))
        u = winograd.filter_bytes(c, k, m, item)
        # the rotated filter lives while dx runs (beside dx's scratch and whatever the pool already
        # holds, e.g. an earlier layer's dU), and is freed before dw grows the pool
        return Footprint(keeps_input=train, forward_scratch=fwd, forward_temp=u, backward_scratch=bwd,
                         backward_temp=u, backward_temp_scratch=dx, scratch_kind="winograd")
    # im2col: one reused buffer of a few MiB of columns (grouped: plus the per-group copies);
    # direct: no columns forward
    wbytes = kh * kw * (c // layer.groups) * k * item
    block = _first_block(n, ho, wo * kh * kw * c * item, cap, wbytes)
    groups_extra = 2 * block if layer.groups > 1 else 0
    fwd = 0 if algorithm == "direct" else pad + block + groups_extra  # direct: no padded copy
    from ..ops.conv import direct_applicable, direct_pays, dx_by_columns_pays, dx_by_planes_pays
    from ..ops.kernels import direct

    if dx_by_planes_pays(c, layer.groups):
        # an RGB-like input: dw first (its kernel's float64 sums, or padded x and a block of
        # columns), then dx from tap-major column gradients and channel planes, a chunk of images
        # at a time within the workspace cap
        # (the pooled columns are held meanwhile; the planes are temporaries on top of them)
        dw_scratch = kh * kw * c * k * 8 if algorithm == "direct" and direct.supports_weight_grad(k) else pad + block
        per_image = (kh * kw * ho * wo + h * w) * c * item
        planes = max(1, min(n, cap // per_image)) * per_image
        return Footprint(keeps_input=train, forward_scratch=fwd, backward_scratch=dw_scratch, backward_temp=planes,
                         scratch_kind="im2col")
    back = None
    if layer.groups == 1 and tuple(layer.stride) == (1, 1):
        from ..ops.conv import _transposed_pads

        back = _transposed_pads(geom, (h, w))

    if algorithm == "direct" and direct.supports_weight_grad(k):
        # dw from its kernel over x itself; dx: a direct convolution of dy (stride 1; no padded
        # copy) or, when no kernel pays, im2col of the padded dy; strided: column gradients one
        # block at a time added into dx
        dw64 = kh * kw * c * k * 8
        if back is not None and not dx_by_columns_pays(c, k):
            (bt, bb), (bl, br) = back
            pad_dy = n * (ho + bt + bb) * (wo + bl + br) * k * item if (bt or bb or bl or br) else 0
            dx_scratch = 0 if direct_applicable(c, 1) and direct_pays(k, c) else pad_dy + _first_block(
                n, h, w * kh * kw * k * item, cap, wbytes)
        else:
            dx_scratch = block
        return Footprint(keeps_input=train, forward_scratch=fwd, backward_scratch=max(dw64, dx_scratch),
                         scratch_kind="im2col")
    if back is not None and not dx_by_columns_pays(c, k):
        # dx = conv(dy, rotated w): padded dy and its columns; then dw: padded x and its columns
        (bt, bb), (bl, br) = back
        pad_dy = n * (ho + bt + bb) * (wo + bl + br) * k * item if (bt or bb or bl or br) else 0
        block_dy = _first_block(n, h, w * kh * kw * k * item, cap, wbytes)
        bwd = max(pad_dy + block_dy, pad + block)
    else:
        # padded x and padded dx live throughout (compiled col2im: no padded dx); columns and
        # their gradient, one block each
        bwd = 2 * pad + 2 * block + groups_extra
    return Footprint(keeps_input=train, cache_bytes=0, forward_scratch=fwd, backward_scratch=bwd, scratch_kind="im2col")


def _maxpool(layer, ins, out, n, item, train) -> Footprint:
    geom = layer.geometry(ins[0])
    o = n * math.prod(out)
    pad = n * _padded(ins[0], geom) * item
    if not train:
        return Footprint(forward_scratch=pad)
    switches = o * (1 if geom.kernel[0] * geom.kernel[1] <= 256 else 4)
    return Footprint(cache_bytes=switches, forward_scratch=pad + 2 * o, backward_scratch=pad + o * (1 + item))


def _avgpool(layer, ins, out, n, item, train) -> Footprint:
    geom = layer.geometry(ins[0])
    o = n * math.prod(out)
    pad = n * _padded(ins[0], geom) * item
    return Footprint(forward_scratch=pad, backward_scratch=pad + o * item)


def _l2pool(layer, ins, out, n, item, train) -> Footprint:
    geom = layer.geometry(ins[0])
    pad = n * _padded(ins[0], geom) * item
    sq = n * (_padded(ins[0], geom) or math.prod(ins[0])) * item
    return Footprint(keeps_input=train, keeps_output=train, forward_scratch=pad + sq,
                     backward_scratch=2 * pad + 3 * n * math.prod(out) * item)


def _fracpool(layer, ins, out, n, item, train) -> Footprint:
    o = n * math.prod(out)
    # int64 argmax per output kept; index and value candidates while searching; dx accumulated in float64
    return Footprint(cache_bytes=8 * o if train else 0, forward_scratch=o * (3 * 8 + 3 * item),
                     backward_scratch=8 * n * math.prod(ins[0]))


def _compiled() -> bool:
    from ..ops import kernels

    return kernels.enabled()


def _relu(layer, ins, out, n, item, train) -> Footprint:
    # NumPy's backward makes a bool mask; the compiled one none
    return Footprint(keeps_output=train, backward_scratch=0 if _compiled() else n * math.prod(out))


def _batchnorm(layer, ins, out, n, item, train) -> Footprint:
    a = 0 if _compiled() else n * math.prod(out) * item
    # the cache references x (x̂ is recomputed); NumPy: forward the variance's temporary, backward
    # x · b; the compiled passes (ops/kernels/norm.py) make none
    return Footprint(keeps_input=train, forward_scratch=a, backward_scratch=a)


def _dropout(layer, ins, out, n, item, train) -> Footprint:
    e = n * math.prod(out)
    if not train or layer.rate == 0:
        return Footprint(output_is_view=True, dx_is_dy=True)
    return Footprint(cache_bytes=e, forward_scratch=8 * e + e * item, backward_scratch=e * item)


def _dense(layer, ins, out, n, item, train) -> Footprint:
    return Footprint(keeps_input=train)


def _lrn(layer, ins, out, n, item, train) -> Footprint:
    a = n * math.prod(out) * item
    return Footprint(keeps_input=train, cache_bytes=a if train else 0, forward_scratch=a if train else 2 * a,
                     backward_scratch=4 * a)


def _local(layer, ins, out, n, item, train) -> Footprint:
    ho, wo, _ = out
    kh, kw = layer.kernel_size
    cols = n * ho * wo * kh * kw * ins[0][2] * item
    return Footprint(keeps_input=train, forward_scratch=cols, backward_scratch=2 * cols)


def _flatten(layer, ins, out, n, item, train) -> Footprint:
    return Footprint(output_is_view=True, dx_is_dy=True)


def _add(layer, ins, out, n, item, train) -> Footprint:
    return Footprint(dx_is_dy=True)


def _nothing(layer, ins, out, n, item, train) -> Footprint:
    return Footprint()


_RULES = {
    "Conv2D": _conv,
    "MaxPool2D": _maxpool,
    "FractionalMaxPool2D": _fracpool,
    "AvgPool2D": _avgpool,
    "L2Pool2D": _l2pool,
    "GlobalAvgPool": _nothing,
    "ReLU": _relu,
    "BatchNorm": _batchnorm,
    "Dropout": _dropout,
    "Dense": _dense,
    "LRN": _lrn,
    "LocallyConnected2D": _local,
    "Flatten": _flatten,
    "Add": _add,
    "Concat": _nothing,
}


def footprint(layer, input_shapes, output_shape, *, batch: int, itemsize: int, train: bool) -> Footprint:
    """The :class:`Footprint` of ``layer`` for a batch of ``batch`` samples of the given per-sample shapes.

    A layer of a type not listed keeps its input (the safe guess) and needs no
    scratch; a layer can give its own rule with a ``footprint(...)`` method of
    this signature.
    """
    own = getattr(layer, "footprint", None)
    if callable(own):
        return own(input_shapes, output_shape, batch=batch, itemsize=itemsize, train=train)
    ins = [tuple(s) for s in input_shapes]
    for cls in type(layer).__mro__:
        rule = _RULES.get(cls.__name__)
        if rule is not None:
            return rule(layer, ins, tuple(output_shape), batch, itemsize, train)
    return Footprint(keeps_input=train)
