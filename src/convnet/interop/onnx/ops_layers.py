"""ONNX ops that become convnet layers: convolutions, pooling, normalisation, activations, FC, merges.

Each handler takes the :class:`~.importer.Builder` ``b`` and the node ``n`` (a
:class:`~.importer.NodeView`) and returns the node's output values.  What they share:

* the input of a CONV/POOL/LRN layer is an NCHW map (layout NCHW: convnet holds it NHWC);
* ONNX weights are moved to convnet's layout here — ``OIHW → HWIO`` for convolutions, and for
  the first FC after a flattened map its rows ``CHW → HWC`` (:func:`~.values.chw_rows_to_hwc`);
* a constant added after a Conv or a MatMul (a bias), or after a scale (a shift) is fused into
  that layer when nothing else reads the layer's output: the sum is the same math;
* ``pads`` are ``[top, left, bottom, right]``; ``auto_pad`` SAME_UPPER is convnet's
  ``"same"`` (the smaller half on top), SAME_LOWER is resolved to explicit pads for the import
  size; ONNX sizes are floors (``fit="crop"``) or, with ``ceil_mode``, ceilings that never start
  a window in the padding (``fit="pad"``, as PyTorch).

Layer constructors refuse what they cannot compute (a ConvNetError); :func:`make` turns that
into the node's ConfigError.
"""
from __future__ import annotations

import numpy as np

from ... import layers as L
from ...errors import ConvNetError
from .values import HWC_FLAT, NCHW, PLAIN, Act, as_plain, chw_rows_to_hwc

__all__ = ["make", "padding", "channel_vector", "merge_inputs"]  # handlers: via table.OPS


def make(n, cls, *args, **kwargs):
    """``cls(*args, **kwargs)``, its refusals (a ConvNetError, an unknown keyword) as the node's ConfigError."""
    try:
        return cls(*args, **kwargs)
    except ConvNetError as exc:
        raise n.fail(f"becomes {cls.__name__}, which refuses its attributes: {exc}") from None
    except TypeError as exc:  # an argument the layer does not take
        raise n.fail(f"becomes {cls.__name__}, which does not take these arguments ({exc})") from None


def require_map(n, x: Act, what: str = "input X", b=None) -> Act:
    """``x`` as an NCHW map; a global pooling's ``(N, C, 1, 1)`` output becomes a map by pooling the
    whole input with a window (``b`` given), else ConfigError."""
    if x.layout == NCHW:
        return x
    if b is not None and x.node in b.global_pools and x.shape[1:] == (1, 1):
        return b.global_pools[x.node](n)
    raise n.fail(f"needs its {what} to be a 4-D NCHW map (2-D spatial ops only); received an ONNX tensor of "
                 f"shape (N, {', '.join(map(str, x.shape))})")


def single(b, n, layer, x: Act, **kw) -> Act:
    """Append a one-input layer that keeps ``x``'s layout (shape-preserving ops)."""
    name, cshape = b.add(n, layer, [x], **kw)
    return x.with_node(name, cshape)


# -- geometry ----------------------------------------------------------------------------------
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def padding(n, hw, kernel, strides, dilations):
    """convnet's padding for the node's ``auto_pad``/``pads``: ``((top, bottom), (left, right))`` or "same"."""
    auto = n.attr("auto_pad", "NOTSET") or "NOTSET"
    if auto not in AUTO_PADS:
        raise n.unsupported("auto_pad", auto, list(AUTO_PADS))
    if auto == "NOTSET":
        p = n.ints("pads", [0, 0, 0, 0], 4)
        if min(p) < 0:
            raise n.unsupported("pads", p, "non-negative pads [top, left, bottom, right]")
        return ((p[0], p[2]), (p[1], p[3]))
    if auto == "VALID":
        return ((0, 0), (0, 0))
    if auto == "SAME_UPPER":
        return "same"
    pads = []
    for size, k, s, d in zip(hw, kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        pads.append((total - total // 2, total // 2))  # the larger half before
    return tuple(pads)


def _pair_attrs(n):
    kernel = n.attr("kernel_shape")
    if kernel is None or len(kernel) != 2:
        raise n.unsupported("kernel_shape", kernel, "two sizes (2-D windows)")
    strides = n.ints("strides", [1, 1], 2)
    dilations = n.ints("dilations", [1, 1], 2)
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1:
        raise n.unsupported("strides" if min(strides) < 1 else "dilations", strides, "positive integers")
    return tuple(kernel), tuple(strides), tuple(dilations)


# -- convolution --------------------------------------------------------------------------------
def conv(b, n):
    x = require_map(n, n.act(0), b=b)
    w = n.const(1, "weights W")
    bias = n.optional_const(2, "bias B")
    if w.ndim != 4:
        raise n.fail(f"has weights of shape {list(w.shape)}; convnet imports 2-D convolutions (OIHW weights)")
    m, cg, kh, kw = w.shape
    c, h, wd = x.shape
    group = int(n.attr("group", 1))
    if group < 1 or c % group or cg * group != c or m % group:
        raise n.unsupported("group", group, f"a divisor of the {c} input and {m} output channels with W of "
                                            f"shape {list(w.shape)}")
    kernel = tuple(n.ints("kernel_shape", (kh, kw), 2))
    if kernel != (kh, kw):
        raise n.unsupported("kernel_shape", list(kernel), f"the weights' {kh}×{kw}")
    strides = tuple(n.ints("strides", [1, 1], 2))
    dilations = tuple(n.ints("dilations", [1, 1], 2))
    pad = padding(n, (h, wd), kernel, strides, dilations)
    bias, fused = _fused_bias(b, n, bias, m, "C")
    layer = make(n, L.Conv2D, m, kernel, stride=strides, padding=pad, dilation=dilations, groups=group,
                 use_bias=bias is not None, fit="crop")
    params = {"w": np.ascontiguousarray(w.transpose(2, 3, 1, 0))}
    if bias is not None:
        params["b"] = bias.reshape(-1)
    name, cshape = b.add(n, layer, [x], params=params)
    ho, wo, k = cshape
    return _done(b, n, fused, Act(name, (k, ho, wo), NCHW, cshape))


def _fused_bias(b, n, bias, channels: int, axis: str):
    """``(bias, index)``: ``bias`` plus the constant that the one node reading this node's output, an
    Add, adds per channel (``axis`` "C": ONNX axis 1 of a map; "last": the last axis of a vector),
    and that Add's index for :meth:`~.importer.Builder.mark_done`; ``(bias, None)`` when there is
    no such Add."""
    found = b.following_constant(n.proto.output[0], ("Add",))
    if found is None:
        return bias, None
    i, _, c = found
    rank = 4 if axis == "C" else 2
    vec = _vector(c, rank, channels, 1 if axis == "C" else rank - 1)
    if vec is None:
        return bias, None
    total = vec if bias is None else bias.reshape(-1).astype(np.result_type(bias, vec)) + vec
    return total.astype(np.float64 if b.dtype == np.float64 else np.float32), i


def _done(b, n, fused, act: Act) -> Act:
    """``act``, which is also the output of the fused node ``fused`` (if any)."""
    if fused is not None:
        b.mark_done(fused, [act], hides=n.proto.output[0])
    return act


def _vector(c: np.ndarray, rank: int, channels: int, axis: int) -> np.ndarray | None:
    """The constant ``c`` (broadcast against an ONNX tensor of ``rank``) as a ``(channels,)`` vector
    when it varies along ``axis`` only (or not at all); None otherwise (or when it has a batch axis)."""
    c = np.asarray(c)
    if c.ndim > rank:
        return None
    full = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if any(d != 1 for i, d in enumerate(full.shape) if i != axis) or full.shape[axis] not in (1, channels):
        return None
    return np.broadcast_to(full.reshape(-1), (channels,)).copy()


def conv_transpose(b, n):
    x = require_map(n, n.act(0), b=b)
    w = n.const(1, "weights W")
    bias = n.optional_const(2, "bias B")
    if w.ndim != 4:
        raise n.fail(f"has weights of shape {list(w.shape)}; convnet imports 2-D transposed convolutions")
    c, h, wd = x.shape
    cin, mg, kh, kw = w.shape
    group = int(n.attr("group", 1))
    if group < 1 or cin != c or c % group:
        raise n.unsupported("group", group, f"a divisor of the {c} input channels with W of shape {list(w.shape)}")
    kernel = tuple(n.ints("kernel_shape", (kh, kw), 2))
    if kernel != (kh, kw):
        raise n.unsupported("kernel_shape", list(kernel), f"the weights' {kh}×{kw}")
    strides = tuple(n.ints("strides", [1, 1], 2))
    dilations = tuple(n.ints("dilations", [1, 1], 2))
    out_pad = n.ints("output_padding", [0, 0], 2)
    auto = n.attr("auto_pad", "NOTSET") or "NOTSET"
    if auto not in AUTO_PADS:
        raise n.unsupported("auto_pad", auto, list(AUTO_PADS))
    out_shape = n.attr("output_shape")
    if out_shape is not None and len(out_shape) not in (2, 4):
        raise n.unsupported("output_shape", out_shape, "the output's height and width")
    pads = []
    for i, (size, k, s, d) in enumerate(zip((h, wd), kernel, strides, dilations)):
        full = (size - 1) * s + d * (k - 1) + 1 + out_pad[i]
        if out_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
            target = out_shape[-2 + i] if out_shape is not None else size * s
            total = full - target
            if total < 0:  # more rows than the windows reach: rows of bias only at the end
                out_pad[i] -= total
                total = 0
            upper = auto == "SAME_UPPER"
            pads.append((total // 2, total - total // 2) if upper else (total - total // 2, total // 2))
        elif auto == "VALID":
            pads.append((0, 0))
        else:
            p = n.ints("pads", [0, 0, 0, 0], 4)
            if min(p) < 0:
                raise n.unsupported("pads", p, "non-negative pads")
            pads.append((p[i], p[i + 2]))
    m = mg * group
    cls = L.ConvTranspose2D
    layer = make(n, cls, m, kernel, stride=strides, padding=tuple(pads), output_padding=tuple(out_pad),
                 dilation=dilations, groups=group, use_bias=bias is not None)
    # ONNX (C_in, M/g, kh, kw) -> convnet's (kh, kw, M/g, C_in): the kernel of the convolution whose
    # data gradient this is, in HWIO (it reads the M-channel output and writes the C_in-channel input)
    params = {"w": np.ascontiguousarray(w.transpose(2, 3, 1, 0))}
    if bias is not None:
        params["b"] = bias.reshape(-1)
    name, cshape = b.add(n, layer, [x], params=params)
    ho, wo, k = cshape
    return Act(name, (k, ho, wo), NCHW, cshape)


# -- pooling ------------------------------------------------------------------------------------
def _pool(b, n, cls, **extra):
    x = require_map(n, n.act(0), b=b)
    kernel, strides, dilations = _pair_attrs(n)
    pad = padding(n, x.shape[1:], kernel, strides, dilations)
    ceil = int(n.attr("ceil_mode", 0))
    if ceil not in (0, 1):
        raise n.unsupported("ceil_mode", ceil, [0, 1])
    if pad != "same" and any(max(p) > k // 2 for p, k in zip(pad, kernel)):
        raise n.unsupported("pads", n.attr("pads", n.attr("auto_pad")), f"at most half the window {list(kernel)} on "
                                                                        "each side (convnet's windows always cover "
                                                                        "some input)")
    kw = dict(stride=strides, padding=pad, fit="pad" if ceil else "crop", **extra)
    if dilations != (1, 1):
        kw["dilation"] = dilations
    layer = make(n, cls, kernel, **kw)
    name, cshape = b.add(n, layer, [x])
    ho, wo, c = cshape
    return Act(name, (c, ho, wo), NCHW, cshape)


def max_pool(b, n):
    if int(n.attr("storage_order", 0)) not in (0, 1):
        raise n.unsupported("storage_order", n.attr("storage_order"), [0, 1])
    return _pool(b, n, L.MaxPool2D)


def average_pool(b, n):
    include = int(n.attr("count_include_pad", 0))
    if include not in (0, 1):
        raise n.unsupported("count_include_pad", include, [0, 1])
    return _pool(b, n, L.AvgPool2D, count_include_pad=bool(include))


def lp_pool(b, n):
    return _pool(b, n, L.LpPool2D, p=n.attr("p", 2))


def _global(b, n, cls, window_cls, **kw):
    x = require_map(n, n.act(0), b=b)
    name, cshape = b.add(n, make(n, cls, **kw), [x])

    def as_map(reader):
        """The same pooling as a window over the whole map, for a reader that needs (N, C, 1, 1) as a
        map (made once; the global layer disappears if nothing else reads it)."""
        if name not in made:
            h, w, c = x.cshape
            layer = make(reader, window_cls, (h, w), stride=(h, w), **kw)
            made[name] = Act(*_added(b, n, layer, x, "_map"))
        return made[name]

    made = {}
    b.global_pools[name] = as_map
    return Act(name, (x.shape[0], 1, 1), PLAIN, cshape)


def _added(b, n, layer, x, suffix):
    name, cshape = b.add(n, layer, [x], suffix=suffix)
    h, w, c = cshape
    return name, (c, h, w), NCHW, cshape


def global_average_pool(b, n):
    return _global(b, n, L.GlobalAvgPool, L.AvgPool2D)


def global_max_pool(b, n):
    return _global(b, n, L.GlobalMaxPool, L.MaxPool2D)


def global_lp_pool(b, n):
    return _global(b, n, L.GlobalLpPool, L.LpPool2D, p=n.attr("p", 2))


def _reduce(b, n, cls, window_cls):
    """ReduceMean / ReduceMax over the two spatial axes of a map: global pooling (how PyTorch
    exports ``x.mean((2, 3))``); other axes are refused."""
    x = require_map(n, n.act(0), b=b)
    axes = n.attr("axes")
    if axes is None and len(n.inputs) > 1:  # opset 18: the axes are an input
        axes = n.optional_const(1, "axes")
    if axes is None or len(axes) == 0:
        raise n.unsupported("axes", axes, "the two spatial axes [2, 3] of an NCHW map")
    if int(n.attr("noop_with_empty_axes", 0)) != 0:
        raise n.unsupported("noop_with_empty_axes", n.attr("noop_with_empty_axes"), [0])
    if sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) != [2, 3]:
        raise n.unsupported("axes", [int(a) for a in np.asarray(axes).reshape(-1)],
                            "the two spatial axes [2, 3] of an NCHW map (global pooling)")
    pooled = _global(b, n, cls, window_cls)
    if int(n.attr("keepdims", 1)) not in (0, 1):
        raise n.unsupported("keepdims", n.attr("keepdims"), [0, 1])
    if int(n.attr("keepdims", 1)) == 0:
        return Act(pooled.node, (x.shape[0],), PLAIN, pooled.cshape)
    return pooled


def reduce_mean(b, n):
    return _reduce(b, n, L.GlobalAvgPool, L.AvgPool2D)


def reduce_max(b, n):
    return _reduce(b, n, L.GlobalMaxPool, L.MaxPool2D)


# -- normalisation ------------------------------------------------------------------------------
def lrn(b, n):
    x = require_map(n, n.act(0), b=b)
    size = n.attr("size")
    if size is None or size < 1 or size % 2 == 0:
        raise n.unsupported("size", size, "an odd size (ONNX and convnet centre the window alike only then)")
    layer = make(n, L.LRN, size=int(size), alpha=float(n.attr("alpha", 1e-4)), beta=float(n.attr("beta", 0.75)),
                 k=float(n.attr("bias", 1.0)))
    return single(b, n, layer, x)


def batch_norm(b, n):
    x = n.act(0)
    c = x.channels
    if c is None:
        raise n.fail(f"normalises ONNX axis 1 of a tensor of shape (N, {', '.join(map(str, x.shape))}); convnet "
                     "normalises NCHW maps and (N, C) vectors")
    if int(n.attr("spatial", 1)) != 1:
        raise n.unsupported("spatial", n.attr("spatial"), [1])
    if int(n.attr("training_mode", 0)) != 0:
        raise n.unsupported("training_mode", n.attr("training_mode"), "0 (inference: the running statistics)")
    arrays = {}
    for i, key in ((1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")):
        v = np.asarray(n.const(i, key))
        if v.size != c:
            raise n.fail(f"has {key} of shape {list(v.shape)} for {c} channels")
        arrays[key] = v.reshape(c)
    momentum = float(n.attr("momentum", 0.9))
    layer = make(n, L.BatchNorm, momentum=min(max(1.0 - momentum, 0.0), 1.0), eps=float(n.attr("epsilon", 1e-5)))
    return single(b, n, layer, x, params={"gamma": arrays["scale"], "beta": arrays["B"]},
                  state={"running_mean": arrays["input_mean"], "running_var": arrays["input_var"]})


# -- activations --------------------------------------------------------------------------------
def relu(b, n):
    return single(b, n, L.ReLU(), n.act(0))


def leaky_relu(b, n):
    return single(b, n, make(n, L.LeakyReLU, float(n.attr("alpha", 0.01))), n.act(0))


def sigmoid(b, n):
    return single(b, n, make(n, L.Sigmoid), n.act(0))


#: Clip's bounds before opset 11 when not given: the float32 extremes, i.e. no bound
_FLT_MAX = float(np.finfo(np.float32).max)


def clip(b, n):
    x = n.act(0)
    if n.opset < 11:
        lo, hi = n.attr("min"), n.attr("max")
        lo = None if lo is None or lo <= -_FLT_MAX else float(lo)
        hi = None if hi is None or hi >= _FLT_MAX else float(hi)
    else:
        lo, hi = (n.optional_const(i, what) for i, what in ((1, "min"), (2, "max")))
        for what, v in (("min", lo), ("max", hi)):
            if v is not None and v.size != 1:
                raise n.fail(f"has a {what} of shape {list(v.shape)}; expected a scalar")
        lo = None if lo is None else float(lo.reshape(-1)[0])
        hi = None if hi is None else float(hi.reshape(-1)[0])
    if lo == 0.0 and hi is None:
        return single(b, n, L.ReLU(), x)
    if lo == 0.0 and hi == 6.0:
        return single(b, n, L.ReLU6(), x)
    return single(b, n, make(n, L.Clip, min=lo, max=hi), x)


def dropout(b, n):
    x = n.act(0)
    if n.opset < 12:
        ratio = float(n.attr("ratio", 0.5))
    else:
        r = n.optional_const(1, "ratio")
        ratio = 0.5 if r is None else float(np.asarray(r).reshape(-1)[0])
        mode = n.optional_const(2, "training_mode")
        if mode is not None and bool(np.asarray(mode).reshape(-1)[0]):
            raise n.unsupported("training_mode", True, "False (inference: Dropout is the identity)")
    return single(b, n, make(n, L.Dropout, ratio), x)


def softmax(b, n):
    return _softmax(b, n, L.Softmax)


def log_softmax(b, n):
    return _softmax(b, n, L.LogSoftmax)


def _softmax(b, n, cls):
    x = n.act(0)
    r = x.rank
    axis = int(n.attr("axis", 1 if n.opset < 13 else -1))
    if not -r <= axis < r:
        raise n.unsupported("axis", axis, f"an axis of a rank-{r} tensor")
    axis %= r
    if axis == 0:
        raise n.unsupported("axis", axis, "a per-sample axis (axis 0 is the batch)")
    onnx_axes = tuple(range(axis, r)) if n.opset < 13 else (axis,)  # before 13: the axes from `axis` on, as one
    axes = _convnet_axes(x, onnx_axes)
    if axes is None:
        raise n.unsupported("axis", n.attr("axis", axis), f"axes convnet can map for an ONNX tensor of shape "
                                                          f"(N, {', '.join(map(str, x.shape))}) held as {x.layout}")
    return single(b, n, make(n, cls, axis=axes[0] if len(axes) == 1 else axes), x)


def _convnet_axes(x: Act, onnx_axes) -> tuple[int, ...] | None:
    """The axes of convnet's batch array that hold ONNX axes ``onnx_axes`` (batch axis 0 in both),
    or None where the layout scatters them."""
    every = tuple(range(1, x.rank))
    if tuple(onnx_axes) == every:  # all of a sample: the order does not matter
        return tuple(range(1, len(x.cshape) + 1))
    if x.layout == NCHW:
        return tuple(sorted({1: 3, 2: 1, 3: 2}[a] for a in onnx_axes))
    if x.layout == PLAIN:
        if tuple(x.cshape) == tuple(x.shape):
            return tuple(onnx_axes)
        if tuple(onnx_axes) == (x.rank - 1,) and x.cshape[-1] == x.shape[-1]:
            return (-1,)
    return None


# -- fully connected ------------------------------------------------------------------------------
def gemm(b, n):
    if int(n.attr("transA", 0)):
        raise n.unsupported("transA", 1, "0 (A is the batch of activations, one sample per row)")
    if n.opset < 7 and int(n.attr("broadcast", 1)) != 1:
        raise n.unsupported("broadcast", n.attr("broadcast"), [1])
    x = n.act(0, "input A")
    w = np.asarray(n.const(1, "weights B"))
    if w.ndim != 2:
        raise n.fail(f"has weights B of shape {list(w.shape)}; expected a matrix")
    if int(n.attr("transB", 0)):
        w = w.T
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    c = n.optional_const(2, "bias C")
    m = w.shape[1]
    bias = None
    if c is not None and beta != 0.0:
        bias = _vector(c, 2, m, 1)
        if bias is None:
            raise n.fail(f"has a bias C of shape {list(np.shape(c))}, which varies over the batch; convnet's FC "
                         f"adds one bias vector of {m} to every sample")
    return _dense(b, n, x, w, bias, alpha=alpha, beta=beta if bias is not None else 1.0)


def matmul(b, n):
    x = n.act(0, "input A")
    w = np.asarray(n.const(1, "weights B"))
    if w.ndim != 2:
        raise n.fail(f"has weights B of shape {list(w.shape)}; convnet imports MatMul as an FC layer, with a "
                     "constant matrix B")
    return _dense(b, n, x, w, None)


def _dense(b, n, x: Act, w: np.ndarray, bias, *, alpha: float = 1.0, beta: float = 1.0) -> Act:
    if len(x.shape) != 1:
        raise n.fail(f"multiplies an ONNX tensor of shape (N, {', '.join(map(str, x.shape))}); convnet's FC takes "
                     "a batch of vectors (N, K)")
    k, m = w.shape
    if x.shape[0] != k:
        raise n.fail(f"multiplies vectors of {x.shape[0]} by weights of shape {[k, m]}")
    if x.layout == HWC_FLAT:
        w = chw_rows_to_hwc(w, x.hwc)
    elif x.layout != PLAIN:
        raise n.fail(f"reads an activation held as {x.layout}, which convnet cannot feed to an FC layer")
    fused = None
    if beta == 1.0:
        bias, fused = _fused_bias(b, n, bias, m, "last")
    params = {"w": np.ascontiguousarray(w)}
    if bias is not None:
        params["b"] = np.asarray(bias).reshape(-1)
    scales = {k: v for k, v in (("alpha", alpha), ("beta", beta)) if v != 1.0}
    layer = make(n, L.Dense, m, use_bias=bias is not None, **scales)
    name, cshape = b.add(n, layer, [x], params=params)
    return _done(b, n, fused, Act(name, (m,), PLAIN, cshape))


# -- elementwise with constants, and merges ---------------------------------------------------------
def channel_vector(n, x: Act, c: np.ndarray, what: str) -> np.ndarray:
    """A constant operand of an elementwise op as a vector over convnet's last axis of ``x``;
    ConfigError where it varies along any other axis (or the batch)."""
    c = np.asarray(c)
    if c.ndim > x.rank:
        raise n.fail(f"has a constant {what} of shape {list(c.shape)}, of higher rank than the activation "
                     f"(N, {', '.join(map(str, x.shape))})")
    if c.ndim == x.rank and c.shape[0] != 1:
        raise n.fail(f"has a constant {what} of shape {list(c.shape)} that varies over the batch")
    if c.size == 1:
        return np.full(x.cshape[-1], c.reshape(-1)[0], dtype=c.dtype)
    if x.layout == NCHW:
        vec = _vector(c, 4, x.shape[0], 1)
    else:
        p = as_plain(x)
        vec = _vector(c, x.rank, x.shape[-1], x.rank - 1) if p is not None and x.cshape[-1] == x.shape[-1] else None
    if vec is None:
        raise n.fail(f"has a constant {what} of shape {list(c.shape)} that varies along more than the channel axis "
                     f"of an ONNX tensor of shape (N, {', '.join(map(str, x.shape))}); convnet applies per-channel "
                     "constants only")
    return vec


def _affine(b, n, x: Act, scale=None, shift=None) -> Act:
    """``x · scale + shift`` per channel (a ChannelAffine layer); a following Add/Sub of a
    per-channel constant is fused into the shift."""
    fused = None
    if scale is not None and shift is None:
        found = b.following_constant(n.proto.output[0], ("Add", "Sub"))
        if found is not None:
            i, op, c = found
            reversed_sub = op == "Sub" and b.graph.nodes[i].input[0] != n.proto.output[0]  # c - (x·s)
            try:
                vec = channel_vector(n, x, c, "shift")
            except ConvNetError:
                vec = None
            if vec is not None and not reversed_sub:
                shift, fused = (-vec if op == "Sub" else vec), i
    dt = np.float64 if b.dtype == np.float64 else np.float32
    c = x.cshape[-1]
    params = {"scale": (np.ones(c) if scale is None else scale).astype(dt),
              "shift": (np.zeros(c) if shift is None else shift).astype(dt)}
    layer = make(n, L.ChannelAffine)
    name, cshape = b.add(n, layer, [x], params=params)
    return _done(b, n, fused, x.with_node(name, cshape))


def _split(n):
    acts = [v for v in n.inputs if isinstance(v, Act)]
    consts = [v.value for v in n.inputs if v is not None and not isinstance(v, Act)]
    for v in n.inputs:
        if v is not None and not isinstance(v, Act) and v.has_batch:
            raise n.fail("computes with the batch size, which convnet cannot use")
    return acts, consts


def add(b, n):
    acts, consts = _split(n)
    if not acts:
        raise n.fail("has no activation input")  # unreachable: all-constant nodes are folded
    if consts:
        if len(acts) != 1:
            raise n.fail("adds a constant to several activations; convnet adds constants to one")
        total = consts[0]
        for c in consts[1:]:
            total = total + c
        return _affine(b, n, acts[0], shift=channel_vector(n, acts[0], total, "addend"))
    if len(acts) == 1:
        return acts[0]  # Sum of one input
    acts = merge_inputs(b, n, acts)
    name, cshape = b.add(n, L.Add(), acts)
    return acts[0].with_node(name, cshape)


def sub(b, n):
    first_const = not isinstance(n.inputs[0], Act)
    acts, consts = _split(n)
    if len(acts) != 1:
        raise n.fail("subtracts two activations; convnet has no subtraction layer")
    vec = channel_vector(n, acts[0], consts[0], "subtrahend" if not first_const else "minuend")
    if first_const:  # c - x
        return _affine(b, n, acts[0], scale=-np.ones_like(vec), shift=vec)
    return _affine(b, n, acts[0], shift=-vec)


def mul(b, n):
    acts, consts = _split(n)
    if consts:
        if len(acts) != 1:
            raise n.fail("multiplies several activations by a constant")
        return _affine(b, n, acts[0], scale=channel_vector(n, acts[0], consts[0], "factor"))
    acts = merge_inputs(b, n, acts, broadcast=True)
    name, cshape = b.add(n, make(n, L.Mul), acts)
    big = max(acts, key=lambda a: a.size)
    return big.with_node(name, cshape)


def div(b, n):
    acts, consts = _split(n)
    if not consts or not isinstance(n.inputs[0], Act):
        raise n.fail("divides by an activation; convnet divides activations by constants only")
    vec = channel_vector(n, acts[0], consts[0], "divisor")
    if np.any(vec == 0):
        raise n.fail("divides by zero")
    return _affine(b, n, acts[0], scale=(1.0 / vec.astype(np.float64)))


def merge_inputs(b, n, acts: list[Act], *, broadcast: bool = False) -> list[Act]:
    """The inputs of a merge (ADD, MUL), held alike; ConfigError where their ONNX shapes differ
    (``broadcast``: MUL's per-channel gates ``(N, C, 1, 1)`` of an NCHW map) or their layouts cannot
    be made to agree."""
    shapes = {a.shape for a in acts}
    if len(shapes) != 1:
        big = max(acts, key=lambda a: a.size)
        gates = [a for a in acts if a is not big]
        if broadcast and big.layout == NCHW and all(
                a.shape == (big.shape[0], 1, 1) and a.layout in (NCHW, PLAIN) for a in gates):
            return acts  # (H, W, C) · (1, 1, C) or (C,): NumPy's broadcasting in convnet's layout too
        raise n.fail(f"combines activations of ONNX shapes {[list(a.shape) for a in acts]}; convnet merges "
                     "activations of one shape" + (" (or a map and per-channel gates)" if broadcast else ""))
    if len({(a.layout, a.cshape, a.hwc, a.groups, a.swapped) for a in acts}) == 1:
        return acts
    flat = [b.flatten(n, a, L.Flatten) if a.layout in (PLAIN, HWC_FLAT) else a for a in acts]
    if len({(a.layout, a.cshape, a.hwc) for a in flat}) == 1:
        return flat
    plain = [as_plain(a) for a in acts]
    if all(p is not None for p in plain) and len({p.cshape for p in plain}) == 1:
        return plain
    raise n.fail(f"combines activations held in different layouts ({[a.layout for a in acts]}), which convnet "
                 "cannot line up")


def concat(b, n):
    acts, consts = _split(n)
    if consts:
        raise n.fail("concatenates constants with activations; convnet concatenates activations only")
    if len(acts) == 1:
        return acts[0]
    r = acts[0].rank
    axis = int(n.attr("axis", 1))
    if not -r <= axis < r:
        raise n.unsupported("axis", axis, f"an axis of rank {r}")
    axis %= r
    if axis == 0:
        raise n.unsupported("axis", n.attr("axis", 1), "a per-sample axis (axis 0 is the batch)")
    if any(a.rank != r for a in acts):
        raise n.fail("concatenates tensors of different ranks")
    if all(a.layout == NCHW for a in acts):
        caxis = {1: -1, 2: 1, 3: 2}[axis]
    elif all(a.layout in (PLAIN, HWC_FLAT) for a in acts):
        if axis == r - 1:
            acts = [b.flatten(n, a, L.Flatten) if len(a.shape) == 1 else a for a in acts]
        if any(a.layout != PLAIN or a.cshape != a.shape for a in acts):
            raise n.fail("concatenates tensors convnet holds in another order or shape (flattened maps); their "
                         "ONNX order differs")
        caxis = axis
    else:
        raise n.fail(f"concatenates tensors held in different layouts ({sorted({a.layout for a in acts})})")
    name, cshape = b.add(n, make(n, L.Concat, axis=caxis), acts)
    a0 = acts[0]
    if a0.layout == NCHW:
        h, w, c = cshape
        return Act(name, (c, h, w), NCHW, cshape)
    return Act(name, tuple(cshape), PLAIN, cshape)
