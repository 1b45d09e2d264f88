"""Write a convnet :class:`~convnet.net.Net` as an ONNX model: ``save(net, path, *, opset=17)``.

The model computes the net's inference forward pass (``net.predict``) on the other side of
the layout fence::

    input   "input"   float32 (N, C, H, W)     N symbolic ("N"); (N, D) for a vector input
    output  "output"  float32 (N, K) logits     (N, C, H, W) when the net ends in a map

Every convnet node becomes one ONNX node (or a few), named after it; its weights become
initializers named ``<node>.<key>`` as in :meth:`Net.named_parameters` (``conv1.w``,
``layer1.0.bn1.running_mean``) — in ONNX's layout.  What changes on the way:

* **Layout.**  Activations NHWC → NCHW (the model's input is NCHW), kernels HWIO → OIHW.
  A ``Dense`` reading a map flattens it in convnet's ``(H, W, C)`` order; ONNX's ``Flatten``
  of an NCHW map gives ``(C, H, W)`` order, so the first Dense after a map gets a Flatten and
  its weight rows permuted from HWC to CHW order (:func:`hwc_rows_to_chw`).  A ``Flatten``
  layer whose output goes elsewhere transposes to NHWC first, so it means what it meant.
* **Geometry.**  Pads are written out per side from the layer's geometry at the net's input
  size (``"same"`` resolved).  The bottom/right rows ``fit="pad"`` adds are zero rows in the
  convolution's pads; a pool's are ``ceil_mode=1`` where ONNX's ceil arithmetic gives
  convnet's size, else pads with ``ceil_mode=0`` (−inf for max pooling in both).  Average
  pooling never counts them: see :func:`avg_pool`.
* **BatchNorm** stays unfused: ``BatchNormalization`` with the running statistics and eps.
* **LRN**: both divide alpha by the size, ``y = x / (k + alpha/size · Σ x²)^beta``.  For an
  odd size the windows agree (c ± (size-1)/2) and ``LRN`` is used; for an even size
  convnet's window is ``[c - size//2, c + (size-1)//2]`` (PyTorch's) while ONNX's leans the
  other way (and ONNX Runtime refuses even sizes), so the sum is written as a 1×1 ``Conv`` of
  ``x²`` with a fixed 0/1 band matrix.
* **Global pools** → ``GlobalAveragePool`` (``GlobalMaxPool``, ``GlobalLpPool``) + ``Flatten``:
  convnet's output is ``(N, C)``.  ``LpPool`` takes an integer p; a real p is ``|x|^p`` summed
  by a ones kernel (depthwise ``Conv``; ``ReduceSum`` for the global pool), then ``^(1/p)``.
* **Axes**: convnet's NHWC axes become NCHW ones (channels 1, height 2, width 3) for
  ``Concat``, ``Softmax``/``LogSoftmax`` (over several axes: moved last, merged, normalised,
  moved back) and ``ChannelShuffle``; ``Mul`` broadcasts right-aligned NHWC shapes, so a
  per-channel vector ``(N, C)`` times a map is unsqueezed to ``(N, C, 1, 1)`` first.
* **Dropout** is left out (the identity at inference).  Weights are written as float32 (a
  float64 net too).

The mapping is one table, :data:`EXPORTERS`: layer class → the function that writes it.  It
lives here and not as a method of each layer class because onnx is an optional dependency
and its protobuf is interop's business: a layer knows its own math, not another format's
graph (as it knows nothing of PyTorch's module names).  The key is the exact class — a
subclass may compute something else, so it is refused until it has its own line.  A layer
without a line is a ConfigError naming the node and its class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ... import __version__
from ...backend import to_numpy
from ...errors import ConfigError, PathError
from ...graph import INPUT
from ...layers import (
    LRN,
    Add,
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    ChannelShuffle,
    Clip,
    Concat,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    FractionalMaxPool2D,
    GlobalAvgPool,
    GlobalLpPool,
    GlobalMaxPool,
    Identity,
    L2Pool2D,
    LeakyReLU,
    LocallyConnected2D,
    LogSoftmax,
    LpPool2D,
    MaxPool2D,
    Mul,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
)
from ...ops.pool_fractional import fractional_starts
from ...paths import os_error_message, output_file
from ...ops.softmax import normalize_axes
from ...train.checkpoint import atomic_write
from ...zoo.blocks import PadShortcut

__all__ = ["save", "to_model", "EXPORTERS", "OUTPUT", "BATCH", "MIN_OPSET", "hwio_to_oihw", "hwc_rows_to_chw"]

#: the name of the model's output (its input is :data:`convnet.graph.INPUT`, "input")
OUTPUT = "output"
#: the symbolic batch dimension of the input and output
BATCH = "N"
#: the oldest opset written (13: Split/Slice/Pad/ReduceSum take their sizes as inputs)
MIN_OPSET = 13


# -- layout moves ----------------------------------------------------------------------------
def hwio_to_oihw(w) -> np.ndarray:
    """A convnet kernel ``(kh, kw, C, K)`` as ONNX/PyTorch's ``(K, C, kh, kw)``."""
    return np.ascontiguousarray(np.asarray(w).transpose(3, 2, 0, 1))


def hwc_rows_to_chw(w, map_shape) -> np.ndarray:
    """Dense weights ``(H·W·C, K)`` whose rows follow convnet's NHWC flatten, reordered for an
    NCHW flatten: row ``(h, w, c)`` moves to ``(c, h, w)``."""
    h, wd, c = map_shape
    k = w.shape[1]
    return np.ascontiguousarray(np.asarray(w).reshape(h, wd, c, k).transpose(2, 0, 1, 3).reshape(h * wd * c, k))


def _pads(pads) -> list[int]:
    """convnet's ``((top, bottom), (left, right))`` as ONNX's ``[top, left, bottom, right]``."""
    (t, b), (l, r) = pads
    return [int(t), int(l), int(b), int(r)]


# -- the graph being written ----------------------------------------------------------------
class Graph:
    """The ONNX nodes and initializers written so far, with unique names.

    ``op`` appends a node and returns its output's name; ``weight`` and ``ints`` add
    initializers (float32 and int64) and return their names.
    """

    def __init__(self, onnx, opset: int):
        self.onnx, self.opset = onnx, opset
        self.nodes: list = []
        self.initializers: list = []
        self._tensors = {INPUT, OUTPUT}  # tensor (and initializer) names taken
        self._node_names: set[str] = set()

    @staticmethod
    def _first_free(base: str, used: set) -> str:
        name, i = base, 0
        while name in used:
            i += 1
            name = f"{base}_{i}"
        used.add(name)
        return name

    def fresh(self, base: str) -> str:
        """A tensor name: ``base``, or ``base_1``, ``base_2``... when taken."""
        return self._first_free(base, self._tensors)

    def weight(self, name: str, array) -> str:
        name = self.fresh(name)
        arr = np.ascontiguousarray(to_numpy(array), dtype=np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def ints(self, name: str, values) -> str:
        name = self.fresh(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def op(self, op_type: str, inputs, output: str | None = None, *, name: str, **attrs) -> str:
        """Append ``op_type(inputs)`` writing ``output`` (a fresh name from ``name`` if None)."""
        output = output or self.fresh(name)
        node_name = self._first_free(name, self._node_names)
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [output], name=node_name, **attrs))
        return output


@dataclass(frozen=True)
class Site:
    """What an export function is told about the node it writes."""

    name: str  # the convnet node's name: the ONNX nodes' names and its weights' prefix
    inputs: tuple[str, ...]  # the ONNX tensors it reads
    in_shapes: tuple[tuple[int, ...], ...]  # their per-sample convnet shapes: (H, W, C) or (D,)
    out_shape: tuple[int, ...]  # its per-sample convnet output shape
    out: str  # the tensor it must write its result to

    @property
    def x(self) -> str:
        return self.inputs[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.in_shapes[0]


# -- one function per layer class -------------------------------------------------------------
def conv2d(g: Graph, layer: Conv2D, s: Site) -> str:
    geom = layer.geometry(s.shape)
    inputs = [s.x, g.weight(f"{s.name}.w", hwio_to_oihw(layer.params["w"]))]
    if layer.use_bias:
        inputs.append(g.weight(f"{s.name}.b", layer.params["b"]))
    return g.op("Conv", inputs, s.out, name=s.name, kernel_shape=list(geom.kernel), strides=list(geom.stride),
                dilations=list(geom.dilation), pads=_pads(geom.pads), group=layer.groups)


def conv_transpose(g: Graph, layer: ConvTranspose2D, s: Site) -> str:
    """``ConvTranspose``: convnet's ``w (kh, kw, K/g, C)`` is ONNX's ``(C, K/g, kh, kw)``; the pads
    crop the full output as ONNX's do, ``output_padding`` adds rows at the bottom/right."""
    inputs = [s.x, g.weight(f"{s.name}.w", np.ascontiguousarray(to_numpy(layer.params["w"]).transpose(3, 2, 0, 1)))]
    if layer.use_bias:
        inputs.append(g.weight(f"{s.name}.b", layer.params["b"]))
    return g.op("ConvTranspose", inputs, s.out, name=s.name, kernel_shape=list(layer.kernel_size),
                strides=list(layer.stride), dilations=list(layer.dilation), pads=_pads(layer.padding),
                output_padding=list(layer.output_padding), group=layer.groups)


def dense(g: Graph, layer: Dense, s: Site) -> str:
    """``Gemm(flatten(x), w, b)``: y = alpha·x·w + beta·b as in convnet; after a map, a Flatten
    and the rows of ``w`` permuted to NCHW order."""
    x, w = s.x, to_numpy(layer.params["w"])
    if len(s.shape) == 3:
        x = g.op("Flatten", [x], name=f"{s.name}/flatten", axis=1)
        w = hwc_rows_to_chw(w, s.shape)
    inputs = [x, g.weight(f"{s.name}.w", w)]
    if layer.use_bias:
        inputs.append(g.weight(f"{s.name}.b", layer.params["b"]))
    scales = {k: float(v) for k, v in (("alpha", layer.alpha), ("beta", layer.beta)) if v != 1.0}
    return g.op("Gemm", inputs, s.out, name=s.name, **scales)


def flatten(g: Graph, layer: Flatten, s: Site) -> str:
    """convnet flattens in NHWC order: back to NHWC, then ``Flatten``."""
    x = s.x
    if len(s.shape) == 3:
        x = g.op("Transpose", [x], name=f"{s.name}/nhwc", perm=[0, 2, 3, 1])
    return g.op("Flatten", [x], s.out, name=s.name, axis=1)


def _pool_attrs(g: Graph, geom, op_type: str, name: str, dilation_since: int) -> dict:
    attrs = dict(kernel_shape=list(geom.kernel), strides=list(geom.stride))
    if tuple(geom.dilation) != (1, 1):
        if g.opset < dilation_since:
            raise ConfigError(f"Cannot export node {name!r}: a dilated {op_type} needs opset {dilation_since} or "
                              f"later; received opset={g.opset}.")
        attrs["dilations"] = list(geom.dilation)
    return attrs


def _own_pads(geom):
    """The padding the layer was given: its geometry's pads less the rows ``fit="pad"`` added."""
    (t, b), (l, r) = geom.pads
    return ((t, b - geom.height.fit_extra), (l, r - geom.width.fit_extra))


def _ceil_gives_our_size(geom) -> bool:
    """Whether ONNX's ``ceil_mode=1`` over the layer's own pads gives convnet's size on both axes.
    It does, except where the window ceil adds would start in the bottom/right padding: convnet
    (as PyTorch) adds none there, ONNX's shape rule keeps it."""
    for ax in (geom.height, geom.width):
        span = ax.padded_size - ax.fit_extra - ax.effective_kernel
        if -(-span // ax.stride) + 1 != ax.out:
            return False
    return True


def _window_pads(geom, *, ceil_mode: bool = True) -> dict:
    """``pads`` and ``ceil_mode`` of a pool: the rows ``fit="pad"`` adds are ONNX's ``ceil_mode=1``
    over the layer's own pads where that gives convnet's size (``ceil_mode``: the op has the
    attribute), else written out as pads with ``ceil_mode=0`` (−inf for max, zeros for Lp:
    either way what convnet adds)."""
    if (geom.height.fit_extra or geom.width.fit_extra) and ceil_mode and _ceil_gives_our_size(geom):
        return dict(pads=_pads(_own_pads(geom)), ceil_mode=1)
    return dict(pads=_pads(geom.pads), ceil_mode=0)


def max_pool(g: Graph, layer: MaxPool2D, s: Site) -> str:
    """``MaxPool``; ONNX's pads are −inf, as convnet's."""
    geom = layer.geometry(s.shape)
    return g.op("MaxPool", [s.x], s.out, name=s.name, **_window_pads(geom), **_pool_attrs(g, geom, "MaxPool",
                                                                                            s.name, 10))


def avg_pool(g: Graph, layer: AvgPool2D, s: Site) -> str:
    """``AveragePool``.  The rows ``fit="pad"`` adds never count.  Without counted zero padding
    that is ``count_include_pad=0`` with those rows as ``ceil_mode`` (or pads); with it, the zero
    padding is a ``Pad`` node before the pool and the rows are uncounted pads — ONNX leaves
    unsaid whether ``ceil_mode``'s rows count when the pads do."""
    geom = layer.geometry(s.shape)
    attrs = _pool_attrs(g, geom, "AveragePool", s.name, 19)
    own = _own_pads(geom)
    if not layer.count_include_pad or not (geom.height.fit_extra or geom.width.fit_extra):
        return g.op("AveragePool", [s.x], s.out, name=s.name, **_window_pads(geom),
                    count_include_pad=int(layer.count_include_pad), **attrs)
    x, uncounted = s.x, geom.pads
    if any(p for pair in own for p in pair):
        top, left, bottom, right = _pads(own)
        x = g.op("Pad", [x, g.ints(f"{s.name}/pads", [0, 0, top, left, 0, 0, bottom, right])],
                 name=f"{s.name}/pad", mode="constant")
        uncounted = ((0, geom.height.fit_extra), (0, geom.width.fit_extra))
    return g.op("AveragePool", [x], s.out, name=s.name, pads=_pads(uncounted), ceil_mode=0, count_include_pad=0,
                **attrs)


def _integer(p: float) -> int | None:
    return int(p) if float(p).is_integer() else None


def lp_pool(g: Graph, layer: LpPool2D, s: Site) -> str:
    """``LpPool`` for an integer p (ONNX's p is an int); zero pads (``fit`` rows included) add
    nothing to the sum.  A real p (or dilation before opset 18): ``(depthwise Conv of |x|^p with
    ones)^(1/p)``."""
    geom = layer.geometry(s.shape)
    if _integer(layer.p) is not None and (tuple(geom.dilation) == (1, 1) or g.opset >= 18):
        window = _window_pads(geom, ceil_mode=g.opset >= 18)  # LpPool has ceil_mode from opset 18
        if g.opset < 18:
            del window["ceil_mode"]
        return g.op("LpPool", [s.x], s.out, name=s.name, p=_integer(layer.p), **window,
                    **_pool_attrs(g, geom, "LpPool", s.name, 18))
    c = s.shape[2]
    powered = g.op("Pow", [g.op("Abs", [s.x], name=f"{s.name}/abs"), g.weight(f"{s.name}/p", np.array(layer.p))],
                   name=f"{s.name}/power")
    ones = g.weight(f"{s.name}/window", np.ones((c, 1, *geom.kernel), dtype=np.float32))
    total = g.op("Conv", [powered, ones], name=f"{s.name}/sum", kernel_shape=list(geom.kernel),
                 strides=list(geom.stride), dilations=list(geom.dilation), pads=_pads(geom.pads), group=c)
    return g.op("Pow", [total, g.weight(f"{s.name}/inverse_p", np.array(1 / layer.p))], s.out, name=s.name)


def fractional_max_pool(g: Graph, layer: FractionalMaxPool2D, s: Site) -> str:
    """Inference uses fixed region grids: per grid, the maximum over the ``F_h·F_w`` taps of rows
    and columns gathered at ``start + tap``; ``test_mode="average"`` averages the grids as
    convnet does (the same generator, the same draws)."""
    h, w, _ = s.shape
    ho, wo, _ = s.out_shape
    fh, fw = layer.pool_size
    if layer.test_mode == "fixed":
        grids = [np.array([0.5, 0.5])]
    else:
        grid_rng = np.random.default_rng(layer.seed)
        grids = [grid_rng.random((1, 1, 2))[0, 0] for _ in range(layer.test_grids)]
    outs = []
    for i, u in enumerate(grids):
        rows = fractional_starts(np.array(u[0]), h, ho, fh)
        cols = fractional_starts(np.array(u[1]), w, wo, fw)
        taps = []
        for a in range(fh):
            r = g.op("Gather", [s.x, g.ints(f"{s.name}/rows{i}_{a}", rows + a)], name=f"{s.name}/rows", axis=2)
            for b in range(fw):
                taps.append(g.op("Gather", [r, g.ints(f"{s.name}/cols{i}_{b}", cols + b)], name=f"{s.name}/cols",
                                 axis=3))
        outs.append(g.op("Max", taps, name=f"{s.name}/max") if len(taps) > 1 else taps[0])
    if len(outs) == 1:
        return g.op("Identity", outs, s.out, name=s.name)
    total = outs[0]
    for o in outs[1:]:  # summed in convnet's order, then divided
        total = g.op("Add", [total, o], name=f"{s.name}/sum")
    return g.op("Div", [total, g.weight(f"{s.name}/grids", np.array(len(outs)))], s.out, name=s.name)


def global_avg_pool(g: Graph, layer: GlobalAvgPool, s: Site) -> str:
    """``GlobalAveragePool`` gives ``(N, C, 1, 1)``; convnet's GAP gives ``(N, C)``: a Flatten."""
    y = g.op("GlobalAveragePool", [s.x], name=f"{s.name}/pool")
    return g.op("Flatten", [y], s.out, name=s.name, axis=1)


def global_max_pool(g: Graph, layer: GlobalMaxPool, s: Site) -> str:
    y = g.op("GlobalMaxPool", [s.x], name=f"{s.name}/pool")
    return g.op("Flatten", [y], s.out, name=s.name, axis=1)


def global_lp_pool(g: Graph, layer: GlobalLpPool, s: Site) -> str:
    """``GlobalLpPool`` + ``Flatten`` for an integer p; a real p: ``ReduceSum(|x|^p)^(1/p)``."""
    if _integer(layer.p) is not None:
        y = g.op("GlobalLpPool", [s.x], name=f"{s.name}/pool", p=_integer(layer.p))
        return g.op("Flatten", [y], s.out, name=s.name, axis=1)
    powered = g.op("Pow", [g.op("Abs", [s.x], name=f"{s.name}/abs"), g.weight(f"{s.name}/p", np.array(layer.p))],
                   name=f"{s.name}/power")
    total = g.op("ReduceSum", [powered, g.ints(f"{s.name}/axes", [2, 3])], name=f"{s.name}/sum", keepdims=0)
    return g.op("Pow", [total, g.weight(f"{s.name}/inverse_p", np.array(1 / layer.p))], s.out, name=s.name)


def lrn(g: Graph, layer: LRN, s: Site) -> str:
    """``LRN`` for an odd size (the same window); an even size as ``x / (k + a/n · band ⊛ x²)^β``
    with convnet's window ``[c - n//2, c + (n-1)//2]`` in a fixed 1×1 band kernel."""
    if layer.size % 2:
        return g.op("LRN", [s.x], s.out, name=s.name, size=int(layer.size), alpha=float(layer.alpha),
                    beta=float(layer.beta), bias=float(layer.k))
    c = s.shape[-1]
    band = np.zeros((c, c, 1, 1), dtype=np.float32)  # out channel o sums in channels o - n//2 .. o + (n-1)//2
    for o in range(c):
        band[o, max(0, o - layer.size // 2): min(c, o + (layer.size - 1) // 2 + 1)] = 1
    sq = g.op("Mul", [s.x, s.x], name=f"{s.name}/square")
    window = g.op("Conv", [sq, g.weight(f"{s.name}/band", band)], name=f"{s.name}/window", kernel_shape=[1, 1])
    scaled = g.op("Mul", [window, g.weight(f"{s.name}/alpha", np.array(layer.alpha / layer.size))],
                  name=f"{s.name}/scale")
    base = g.op("Add", [scaled, g.weight(f"{s.name}/k", np.array(layer.k))], name=f"{s.name}/base")
    power = g.op("Pow", [base, g.weight(f"{s.name}/beta", np.array(layer.beta))], name=f"{s.name}/power")
    return g.op("Div", [s.x, power], s.out, name=s.name)


def batch_norm(g: Graph, layer: BatchNorm, s: Site) -> str:
    """``BatchNormalization`` in inference form (running statistics), unfused; channel axis 1
    for maps and vectors alike."""
    inputs = [s.x] + [g.weight(f"{s.name}.{key}", arrays[key]) for arrays, key in (
        (layer.params, "gamma"), (layer.params, "beta"), (layer.state, "running_mean"),
        (layer.state, "running_var"))]
    return g.op("BatchNormalization", inputs, s.out, name=s.name, epsilon=float(layer.eps))


def channel_affine(g: Graph, layer: ChannelAffine, s: Site) -> str:
    """``x · scale + shift`` per channel: ``Mul`` and ``Add`` of ``(C, 1, 1)`` constants on a map
    (``(C,)`` on vectors)."""
    shape = (-1, 1, 1) if len(s.shape) == 3 else (-1,)
    scale = g.weight(f"{s.name}.scale", to_numpy(layer.params["scale"]).reshape(shape))
    shift = g.weight(f"{s.name}.shift", to_numpy(layer.params["shift"]).reshape(shape))
    return g.op("Add", [g.op("Mul", [s.x, scale], name=f"{s.name}/scale"), shift], s.out, name=s.name)


def relu(g: Graph, layer: ReLU, s: Site) -> str:
    return g.op("Relu", [s.x], s.out, name=s.name)


def leaky_relu(g: Graph, layer: LeakyReLU, s: Site) -> str:
    return g.op("LeakyRelu", [s.x], s.out, name=s.name, alpha=float(layer.negative_slope))


def sigmoid(g: Graph, layer: Sigmoid, s: Site) -> str:
    return g.op("Sigmoid", [s.x], s.out, name=s.name)


def clip(g: Graph, layer: Clip, s: Site) -> str:
    """``Clip(x, min, max)``, a missing bound an empty input (ReLU6 is ``Clip(0, 6)``)."""
    bounds = ["" if v is None else g.weight(f"{s.name}/{which}", np.array(v))
              for which, v in (("min", layer.min), ("max", layer.max))]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return g.op("Clip", [s.x, *bounds], s.out, name=s.name)


def identity(g: Graph, layer: Identity, s: Site) -> str:
    return g.op("Identity", [s.x], s.out, name=s.name)


def _softmax(op_type: str):
    def write(g: Graph, layer, s: Site) -> str:
        """``Softmax``/``LogSoftmax`` over convnet's axes in NCHW terms (H 1→2, W 2→3, C 3→1); over
        several axes: moved to the end, merged into one, normalised, and moved back."""
        rank = len(s.shape) + 1
        to_onnx = {1: 2, 2: 3, 3: 1} if rank == 4 else {a: a for a in range(rank)}
        axes = sorted(to_onnx[a] for a in normalize_axes(layer.axis, rank, layer.label))
        if len(axes) == 1:
            return g.op(op_type, [s.x], s.out, name=s.name, axis=axes[0])
        dims = _nchw(s.shape)[1:]  # the per-sample ONNX dims
        rest = [a for a in range(1, rank) if a not in axes]
        perm = [0, *rest, *axes]
        moved = g.op("Transpose", [s.x], name=f"{s.name}/move", perm=perm)
        merged_shape = [0, *(dims[a - 1] for a in rest), math.prod(dims[a - 1] for a in axes)]
        merged = g.op("Reshape", [moved, g.ints(f"{s.name}/merged", merged_shape)], name=f"{s.name}/merge")
        y = g.op(op_type, [merged], name=f"{s.name}/normalise", axis=-1)
        y = g.op("Reshape", [y, g.ints(f"{s.name}/split", [0, *(dims[a - 1] for a in perm[1:])])],
                 name=f"{s.name}/split")
        return g.op("Transpose", [y], s.out, name=s.name, perm=[perm.index(a) for a in range(rank)])

    write.__name__ = op_type.lower()
    return write


softmax, log_softmax = _softmax("Softmax"), _softmax("LogSoftmax")


def dropout(g: Graph, layer: Dropout, s: Site) -> str:
    """Left out: the identity at inference (its consumers read its input)."""
    return s.x


def channel_shuffle(g: Graph, layer: ChannelShuffle, s: Site) -> str:
    """``Reshape`` the channels to ``(g, C/g)``, swap the two, ``Reshape`` back."""
    c, groups = s.shape[-1], layer.groups
    rest = [s.shape[0], s.shape[1]] if len(s.shape) == 3 else []  # H, W after the channels in NCHW
    split = g.op("Reshape", [s.x, g.ints(f"{s.name}/groups", [0, groups, c // groups, *rest])],
                 name=f"{s.name}/split")
    swapped = g.op("Transpose", [split], name=f"{s.name}/swap", perm=[0, 2, 1, *range(3, 3 + len(rest))])
    return g.op("Reshape", [swapped, g.ints(f"{s.name}/shape", [0, c, *rest])], s.out, name=s.name)


def add(g: Graph, layer: Add, s: Site) -> str:
    """Binary ``Add``s in convnet's order: ``(x0 + x1) + x2 ...``."""
    y = s.inputs[0]
    for i, x in enumerate(s.inputs[1:], start=1):
        last = i == len(s.inputs) - 1
        y = g.op("Add", [y, x], s.out if last else None, name=s.name)
    return y


def mul(g: Graph, layer: Mul, s: Site) -> str:
    """Binary ``Mul``s in convnet's order.  convnet broadcasts per-sample NHWC shapes aligned to
    the right, so a vector ``(C,)`` times a map ``(H, W, C)`` scales the channels: in NCHW the
    vector ``(N, C)`` becomes ``(N, C, 1, 1)`` first."""
    rank = max(len(shape) for shape in s.in_shapes)
    xs = [x if len(shape) == rank else g.op("Unsqueeze", [x, g.ints(f"{s.name}/axes", [2, 3])], name=f"{s.name}/map")
          for x, shape in zip(s.inputs, s.in_shapes)]
    y = xs[0]
    for i, x in enumerate(xs[1:], start=1):
        y = g.op("Mul", [y, x], s.out if i == len(xs) - 1 else None, name=s.name)
    return y


def concat(g: Graph, layer: Concat, s: Site) -> str:
    """convnet's axis of the NHWC batch in NCHW terms: the channels (-1, 3) are axis 1, the height
    2, the width 3; a vector's features stay axis 1."""
    rank = len(s.shape) + 1
    axis = layer.axis % rank
    return g.op("Concat", list(s.inputs), s.out, name=s.name, axis={1: 2, 2: 3, 3: 1}[axis] if rank == 4 else axis)


def pad_shortcut(g: Graph, layer: PadShortcut, s: Site) -> str:
    """The CIFAR option-A shortcut — every s-th row and column, the channels zero-padded on both
    sides — as a 1×1 stride-s ``Conv`` whose kernel is the identity placed among zero channels:
    exact (each output is one input times 1), and a plain Conv for any reader of the model."""
    c = s.shape[-1]
    extra = layer.filters - c
    before = extra // 2  # the new channels split as PadShortcut splits them
    embed = np.zeros((layer.filters, c, 1, 1), dtype=np.float32)
    embed[before + np.arange(c), np.arange(c), 0, 0] = 1
    return g.op("Conv", [s.x, g.weight(f"{s.name}/embedding", embed)], s.out, name=s.name, kernel_shape=[1, 1],
                strides=[layer.stride, layer.stride])


def locally_connected(g: Graph, layer: LocallyConnected2D, s: Site) -> str:
    """No ONNX op shares no parameters, so: the patches by a ``Conv`` with one-hot kernels
    (``(kh·kw·C)`` channels in convnet's (a, b, c) order), then one batched ``MatMul`` per
    output position with its own ``(kh·kw·C, K)`` weights, and the bias per position."""
    geom = layer.geometry(s.shape)
    (kh, kw), c = layer.kernel_size, s.shape[2]
    ho, wo, k = s.out_shape
    f = kh * kw * c
    onehot = np.zeros((f, c, kh, kw), dtype=np.float32)
    for a in range(kh):
        for b in range(kw):
            for ch in range(c):
                onehot[(a * kw + b) * c + ch, ch, a, b] = 1
    patches = g.op("Conv", [s.x, g.weight(f"{s.name}/patches", onehot)], name=f"{s.name}/patches",
                   kernel_shape=[kh, kw], strides=list(geom.stride), dilations=list(geom.dilation),
                   pads=_pads(geom.pads))
    cols = g.op("Reshape", [patches, g.ints(f"{s.name}/cols_shape", [0, f, ho * wo])], name=f"{s.name}/cols")
    per_pos = g.op("Transpose", [cols], name=f"{s.name}/per_position", perm=[2, 0, 1])  # (Ho·Wo, N, F)
    w = to_numpy(layer.params["w"]).reshape(ho * wo, f, k)
    y = g.op("MatMul", [per_pos, g.weight(f"{s.name}.w", w)], name=f"{s.name}/matmul")  # (Ho·Wo, N, K)
    y = g.op("Transpose", [y], name=f"{s.name}/nkl", perm=[1, 2, 0])
    if not layer.use_bias:
        return g.op("Reshape", [y, g.ints(f"{s.name}/shape", [0, k, ho, wo])], s.out, name=s.name)
    y = g.op("Reshape", [y, g.ints(f"{s.name}/shape", [0, k, ho, wo])], name=f"{s.name}/map")
    b = to_numpy(layer.params["b"]).transpose(2, 0, 1)  # (Ho, Wo, K) -> (K, Ho, Wo)
    return g.op("Add", [y, g.weight(f"{s.name}.b", b)], s.out, name=s.name)


#: layer class -> the function that writes it into the graph (see the module docstring)
EXPORTERS: dict[type, Callable[[Graph, object, Site], str]] = {
    Conv2D: conv2d,
    ConvTranspose2D: conv_transpose,
    LocallyConnected2D: locally_connected,
    Dense: dense,
    Flatten: flatten,
    MaxPool2D: max_pool,
    AvgPool2D: avg_pool,
    LpPool2D: lp_pool,
    L2Pool2D: lp_pool,
    FractionalMaxPool2D: fractional_max_pool,
    GlobalAvgPool: global_avg_pool,
    GlobalMaxPool: global_max_pool,
    GlobalLpPool: global_lp_pool,
    LRN: lrn,
    BatchNorm: batch_norm,
    ChannelAffine: channel_affine,
    ReLU: relu,
    LeakyReLU: leaky_relu,
    Sigmoid: sigmoid,
    Clip: clip,
    ReLU6: clip,
    Softmax: softmax,
    LogSoftmax: log_softmax,
    Identity: identity,
    Dropout: dropout,
    ChannelShuffle: channel_shuffle,
    Add: add,
    Mul: mul,
    Concat: concat,
    PadShortcut: pad_shortcut,
}


# -- the net ------------------------------------------------------------------------------
def _require_onnx():
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401  (a submodule onnx does not always load)
    except ImportError:
        raise ConfigError("Exporting to ONNX needs the onnx package: pip install convnet[onnx].") from None
    return onnx


def _nchw(shape) -> list:
    """A per-sample convnet shape as the ONNX tensor's dims, with the symbolic batch."""
    return [BATCH, shape[2], shape[0], shape[1]] if len(shape) == 3 else [BATCH, *shape]


def _used_nodes(net) -> set[str]:
    """The nodes the output depends on (others are not written)."""
    used = {net.output_name}
    for node in reversed(net.nodes):
        if node.name in used:
            used.update(node.inputs)
    return used


def to_model(net, *, opset: int = 17, input_shape=None):
    """The ``onnx.ModelProto`` of a built ``net`` at the per-sample ``input_shape`` (default the
    net's own); see the module docstring.  Raises ConfigError for an unbuilt net, an opset
    outside ``[MIN_OPSET, onnx's newest]`` or a layer without an exporter."""
    onnx = _require_onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ConfigError(f"Argument `opset` must be an integer from {MIN_OPSET} to {newest} (this onnx's newest); "
                          f"received opset={opset!r}.")
    if not net.built:
        raise ConfigError(f"Net {net.name or ''} is not built, so it has no weights to export; build it "
                          f"(net.build(input_shape, rng=...)) or load its weights first.")
    shapes = net.shapes(input_shape)
    g = Graph(onnx, opset)
    tensor = {INPUT: INPUT}  # convnet node name -> the ONNX tensor holding its output
    used = _used_nodes(net)
    for node in net.nodes:
        if node.name not in used:
            continue
        layer = node.layer
        write = EXPORTERS.get(type(layer))
        if write is None:
            known = ", ".join(sorted(cls.__name__ for cls in EXPORTERS))
            raise ConfigError(f"Cannot export node {node.name!r} to ONNX: layer {type(layer).__name__} has no ONNX "
                              f"mapping; exportable layers are {known}.")
        in_shapes = tuple(shapes[i] for i in node.inputs)
        if layer.params and not layer.accepts(list(in_shapes) if node.multi_input else in_shapes[0]):
            raise ConfigError(f"Cannot export node {node.name!r}: its layer was built for input {layer.input_shape}, "
                              f"not {in_shapes[0]} (the net at input {shapes[INPUT]}).")
        is_output = node.name == net.output_name
        site = Site(node.name, tuple(tensor[i] for i in node.inputs), in_shapes, shapes[node.name],
                    OUTPUT if is_output else g.fresh(node.name))
        y = write(g, layer, site)
        if is_output and y != OUTPUT:  # a layer left out (Dropout) at the end
            y = g.op("Identity", [y], OUTPUT, name=f"{node.name}/output")
        tensor[node.name] = y
    if net.output_name == INPUT:
        g.op("Identity", [INPUT], OUTPUT, name="output")
    helper = onnx.helper
    graph = helper.make_graph(
        g.nodes, net.name or "convnet",
        [helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, _nchw(shapes[INPUT]))],
        [helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, _nchw(shapes[net.output_name]))],
        initializer=g.initializers,
        doc_string=f"convnet net {net.name or ''}: NCHW input {INPUT!r}, output {OUTPUT!r}",
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="convnet", producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    meta = {"convnet.layout": "NCHW", "convnet.input_shape": "x".join(map(str, shapes[INPUT]))}
    if net.head:
        meta["convnet.head"] = net.head  # the net outputs logits; the head follows them
    helper.set_model_props(model, meta)
    return model


def save(net, path, *, opset: int = 17, input_shape=None) -> Path:
    """Write ``net`` (built) to the ONNX file ``path`` — atomically (temporary file, fsync,
    ``os.replace``) — after ``onnx.checker.check_model(full_check=True)``; returns the path.
    PathError (before any work) when ``path`` cannot be written.

    ``opset`` from :data:`MIN_OPSET` to onnx's newest (default 17); ``input_shape`` the
    per-sample ``(H, W, C)`` to fix the model's spatial size at (default the net's own).  The
    model's input is ``"input"`` (N, C, H, W) float32 with a symbolic N, its output ``"output"``.

    Example::

        net = convnet.parse("INPUT[8x8x3] -> CONV3-4 -> RELU -> FC-2").build()
        save(net, "net.onnx")
        x = np.ones((1, 8, 8, 3), np.float32)
        onnxruntime.InferenceSession("net.onnx").run(None, {"input": x.transpose(0, 3, 1, 2)})[0]  # net.predict(x)
    """
    onnx = _require_onnx()
    path = output_file(path, what="The ONNX model")
    model = to_model(net, opset=opset, input_shape=input_shape)
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    try:
        return atomic_write(path, lambda f: f.write(data))
    except OSError as exc:  # the disk filled up, permissions changed...
        raise PathError(os_error_message(exc, what="The ONNX model", path=path)) from None
