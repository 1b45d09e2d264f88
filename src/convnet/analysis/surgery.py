"""Net surgery: FC layers become CONV layers, so a net slides over larger images.

The notes: an FC layer with K=4096 looking at a 7×7×512 volume is a CONV layer
with F=7, P=0, S=1, K=4096 (its output is 1×1×4096); the FC layers after it are
1×1 CONVs.  Because :class:`~convnet.layers.Dense` flattens its input in NHWC
order, the conversion is a reshape of the weight matrix::

    w_fc (H·W·C, K)  →  w_conv (H, W, C, K)          (first FC on an H×W×C volume)
    w_fc (D, K)      →  w_conv (1, 1, D, K)          (FC on a vector: a 1×1 CONV)

The converted net gives the same scores on the original input size (as a
``1×1×K`` map) and, on a larger image, a ``h×w×K`` map of scores in one pass:
cell ``(i, j)`` equals the original net on the crop at ``(i·s, j·s)``, where
``s`` is the product of the strides (32 for VGG and AlexNet).  :func:`dense_scores`
runs it, optionally with shifted passes that halve the stride (the notes'
16-pixel example), and :func:`average_scores` averages the map to one prediction.
"""
from __future__ import annotations

import copy

import numpy as np

from ..backend import get_array_module, to_numpy
from ..device import to_device
from ..errors import ConfigError, ShapeError
from ..graph import INPUT
from ..layers import Conv2D, Dense, Flatten
from ..net import Net


def _clone(layer):
    """A copy of a built layer sharing nothing mutable with the original (caches dropped)."""
    new = copy.deepcopy(layer)
    new.clear_cache()
    return new


def _conv_from_dense(dense: Dense, in_shape, name: str) -> Conv2D:
    w = dense.params["w"]
    if len(in_shape) == 3:
        h, wd, c = in_shape
    elif len(in_shape) == 1:
        h, wd, c = 1, 1, in_shape[0]
    else:
        raise ShapeError(f"to_fully_convolutional: cannot convert {dense.label} reading a volume of shape {tuple(in_shape)}; expected (H, W, C) or (D,).")
    xp = get_array_module(w)
    conv = Conv2D(dense.units, (h, wd), padding=0, use_bias=dense.use_bias, name=name, dtype=dense.dtype)
    conv.build((h, wd, c), xp=xp)
    conv.params["w"] = xp.ascontiguousarray(w.reshape(h, wd, c, dense.units))
    conv.grads["w"] = xp.zeros_like(conv.params["w"])
    if dense.use_bias:
        conv.params["b"] = dense.params["b"].copy()
    return conv


def to_fully_convolutional(net: Net, input_shape=None) -> Net:
    """Return a new net in which every ``Dense`` is an equivalent ``Conv2D`` (and every
    ``Flatten`` before one is gone).  Weights are copied; ``net`` is not changed.

    The first Dense on an ``H×W×C`` volume becomes an ``H×W`` CONV with no padding;
    Dense layers on vectors become ``1×1`` CONVs (their input is then a ``1×1×D``
    map).  The result accepts any input at least as large as the original.
    """
    if not net.built:
        net.build(input_shape)
    shapes = net.shapes(input_shape)
    if not any(isinstance(n.layer, Dense) for n in net.nodes):
        raise ConfigError(f"to_fully_convolutional: net {net.name!r} has no Dense (FC) layer to convert.")
    out = Net(name=f"{net.name}_fully_conv" if net.name else "fully_conv", input_shape=shapes[INPUT])
    out.xp = net.xp
    alias: dict[str, str] = {INPUT: INPUT}
    for node in net.nodes:
        layer = node.layer
        inputs = [alias[i] for i in node.inputs]
        in_shape = shapes[inputs[0]]  # a Flatten before a Dense is skipped: look through it
        if isinstance(layer, Flatten):
            alias[node.name] = inputs[0]
            continue
        if isinstance(layer, Dense):
            new = _conv_from_dense(layer, in_shape, node.name)
        elif not layer.spatially_agnostic:
            raise ConfigError(
                f"to_fully_convolutional: {layer.label} depends on the input size and has no CONV equivalent; "
                f"only Dense and Flatten are converted."
            )
        elif len(in_shape) != 3 and not layer.pointwise:
            raise ShapeError(
                f"to_fully_convolutional: {layer.label} follows an FC layer and reads a vector of shape "
                f"{tuple(in_shape)}; after conversion it would read a 1×1 map, which only ReLU, Dropout "
                f"and BatchNorm accept."
            )
        if not isinstance(layer, Dense):
            new = _clone(layer)
        out.add(new, inputs=inputs if len(inputs) > 1 else inputs[0], name=node.name)
        _retarget(out, node.name)
        alias[node.name] = node.name
    out.output = alias[net.output_name]
    out.head = net.head
    out.build(shapes[INPUT])
    return out


def _retarget(net: Net, name: str) -> None:
    """Let a copied shape-preserving layer (ReLU, Dropout, BatchNorm) read a 1×1×D map
    instead of a D vector, or back, keeping its parameters."""
    node = net.node(name)
    s_in = net.shapes()[node.inputs[0]]
    layer = node.layer
    if layer.built and not layer.accepts(s_in) and layer.pointwise and s_in[-1] == layer.input_shape[-1]:
        layer.input_shape = tuple(s_in)


def to_dense(net: Net, input_shape=None) -> Net:
    """The reverse conversion: CONV layers that see their whole input (kernel equal to the
    input's height and width, no padding, so a 1×1 output) and the 1×1 CONVs after them
    become Dense layers.  Valid only at the given input size; raises ConfigError when no
    CONV qualifies."""
    if not net.built:
        net.build(input_shape)
    shapes = net.shapes(input_shape)
    out = Net(name=f"{net.name}_dense" if net.name else "dense", input_shape=shapes[INPUT])
    out.xp = net.xp
    converted = 0
    for node in net.nodes:
        layer = node.layer
        in_shape, out_shape = shapes[node.inputs[0]], shapes[node.name]
        convertible = (
            isinstance(layer, Conv2D) and len(in_shape) == 3 and layer.kernel_size == tuple(in_shape[:2])
            and out_shape[:2] == (1, 1) and layer.groups == 1 and layer.dilation == (1, 1)
            and not layer.geometry(in_shape).has_padding
        )
        if convertible:
            h, w, c = in_shape
            new = Dense(layer.filters, use_bias=layer.use_bias, name=node.name, dtype=layer.dtype)
            new.build(out.shapes()[node.inputs[0]] if len(out) else tuple(in_shape), xp=net.xp)
            new.params["w"] = layer.params["w"].reshape(h * w * c, layer.filters).copy()
            if layer.use_bias:
                new.params["b"] = layer.params["b"].copy()
            converted += 1
        else:
            new = _clone(layer)
        out.add(new, inputs=node.inputs if len(node.inputs) > 1 else node.inputs[0], name=node.name)
        _retarget(out, node.name)
    if not converted:
        raise ConfigError(
            f"to_dense: net {net.name!r} has no CONV layer whose kernel covers its whole input at {shapes[INPUT]}; nothing to convert."
        )
    out.output = net.output_name
    out.head = net.head
    out.build(shapes[INPUT])
    return out


def total_stride(net: Net) -> tuple[int, int]:
    """Product of the strides on the path to the output (first input at merges, whose
    branches agree): the spacing in pixels of neighbouring score-map cells."""
    sh = sw = 1
    name = net.output_name
    while name != INPUT:
        node = net.node(name)
        s = getattr(node.layer, "stride", None)
        if s is not None:
            sh, sw = sh * s[0], sw * s[1]
        name = node.inputs[0]
    return sh, sw


def dense_scores(fcn: Net, image, *, crop_shape, shifts: int = 1):
    """Score map of a fully convolutional net over a larger ``image`` ``(H, W, C)``.

    ``crop_shape`` is the original net's input ``(h, w)``.  With ``shifts=1`` the
    map has one cell per ``stride`` pixels; with ``shifts=k`` (``k`` dividing the
    stride) ``k×k`` passes on shifted inputs are interleaved for a ``stride/k``
    spacing.  Returns ``(scores (Mh, Mw, K), step (sh/k, sw/k))``; cell ``(i, j)``
    scores the crop whose top-left corner is ``(i·step_h, j·step_w)``.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ShapeError(f"dense_scores: `image` must be (H, W, C); received shape {image.shape}.")
    h, w = crop_shape
    sh, sw = total_stride(fcn)
    if shifts < 1 or sh % shifts or sw % shifts:
        raise ConfigError(f"dense_scores: `shifts` must divide the net's stride {(sh, sw)}; received {shifts}.")
    H, W = image.shape[:2]
    if H < h or W < w:
        raise ShapeError(f"dense_scores: image {image.shape[:2]} is smaller than the net's input {(h, w)}.")
    step_h, step_w = sh // shifts, sw // shifts
    rows, cols = (H - h) // step_h + 1, (W - w) // step_w + 1
    out = None
    for a in range(shifts):
        for b in range(shifts):
            oy, ox = a * step_h, b * step_w
            n_r = len(range(a, rows, shifts))
            n_c = len(range(b, cols, shifts))
            if n_r == 0 or n_c == 0:
                continue
            crop = image[oy : oy + h + (n_r - 1) * sh, ox : ox + w + (n_c - 1) * sw]
            # on a device: the crop goes there and its score map comes back
            m = to_numpy(fcn.predict(to_device(crop[None].astype(fcn_dtype(fcn), copy=False), fcn.xp)))[0]
            if out is None:
                out = np.empty((rows, cols, m.shape[-1]), dtype=m.dtype)
            out[a::shifts, b::shifts] = m[:n_r, :n_c]
    return out, (step_h, step_w)


def fcn_dtype(net: Net):
    for _, p, _ in net.named_parameters():
        return p.dtype
    return np.float32


def average_scores(score_map) -> np.ndarray:
    """Average a ``(h, w, K)`` score map to one ``(K,)`` prediction (the notes' "average the class scores")."""
    score_map = np.asarray(score_map)
    return score_map.reshape(-1, score_map.shape[-1]).mean(axis=0)


def crop_scores(net: Net, image, *, crop_shape, step) -> np.ndarray:
    """The slow way: run the original net on every crop (for checks and benchmarks)."""
    h, w = crop_shape
    H, W = image.shape[:2]
    rows, cols = (H - h) // step[0] + 1, (W - w) // step[1] + 1
    crops = np.stack([image[i * step[0] : i * step[0] + h, j * step[1] : j * step[1] + w] for i in range(rows) for j in range(cols)])
    scores = np.concatenate([net.predict(crops[k : k + 16]) for k in range(0, len(crops), 16)])
    return scores.reshape(rows, cols, -1)


__all__ = ["to_fully_convolutional", "to_dense", "dense_scores", "average_scores", "crop_scores", "total_stride"]
