"""The model explorer's numbers: for one input, the layer table of ``convnet summary``, every
layer's output (quantised: :mod:`convnet.pages.quantize`), where each neuron looks
(:mod:`convnet.pages.fields`), the first layer's filters and the top predictions.

The first CONV layer (when it reads the input directly) also carries its exact float32 weights,
bias and input, so that the page can write out the dot product of any of its neurons; deeper
neurons show their receptive field and their (quantised) value only.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np

from ..analysis.summary import summarize
from ..errors import ConfigError
from ..graph import INPUT
from .fields import neuron_fields
from .html import embed_json
from .quantize import SIDES, choose_side, encode_maps, encode_vector, png_data_url

#: channels drawn per layer (the first ones; the page says "64 of 512")
MAX_CHANNELS = 64
#: raw bytes of quantised maps to start from (PNG compresses them, base64 adds a third)
BUDGET_BYTES = 8_000_000
#: bytes the embedded numbers of a page may take: maps are shrunk further until they fit
MAX_PAYLOAD_BYTES = 4_800_000
#: predictions listed
TOP = 5


@dataclass
class Subject:
    """What a page explores: a built net with its weights, the input image, the net's input made
    from it (normalised as the net was trained), class names, and words for where they came from."""

    net: object
    image: np.ndarray
    x: np.ndarray
    classes: list | None
    name: str
    weights: str
    image_source: str


def float32_b64(a) -> str:
    """An array as base64 of its little-endian float32 bytes (C order)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def first_conv(net):
    """The first CONV node reading the input directly with one group, or None."""
    for node in net.nodes:
        layer = node.layer
        if layer.kind == "CONV" and tuple(node.inputs) == (INPUT,) and getattr(layer, "groups", 1) == 1:
            return node
    return None


def _image_data_url(image: np.ndarray) -> str:
    a = np.clip(np.round(np.asarray(image, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        return png_data_url(a[:, :, 0])
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a[:, :, :3]).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def probabilities(net, scores: np.ndarray) -> np.ndarray:
    """Class probabilities from the net's output: itself after PROB, ``exp`` after LOGSOFTMAX, else a softmax."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    kind = net.node(net.output_name).layer.kind
    if kind == "PROB":
        return s
    if kind == "LOGSOFTMAX":
        return np.exp(s)
    z = np.exp(s - s.max())
    return z / z.sum()


def explore_payload(subject: Subject, *, max_channels: int = MAX_CHANNELS, budget_bytes: int = BUDGET_BYTES,
                    max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> dict:
    """Everything the explorer page draws, as JSON-ready values (see the module docstring).

    The maps start at the largest side whose raw bytes fit ``budget_bytes`` and shrink to the next
    side of :data:`~convnet.pages.quantize.SIDES` while the embedded JSON is over ``max_payload_bytes``.
    """
    net, x = subject.net, np.asarray(subject.x)
    if x.ndim != 3:
        raise ConfigError(f"The explorer draws image inputs (H, W, C); the model {subject.name} takes shape "
                          f"{tuple(x.shape)}.")
    maps = {}
    with np.errstate(all="ignore"):
        net.forward(x[None], train=False, keep_cache=False, observer=lambda n, y: maps.__setitem__(n, np.asarray(y[0])))
    bad = [n for n, y in maps.items() if not np.all(np.isfinite(y))]
    if bad:
        raise ConfigError(f"The output of layer {bad[0]} of {subject.name} is NaN or infinite for this input; "
                          f"the weights or the input are broken.")
    shapes = net.shapes(tuple(x.shape))
    summary = summarize(net, tuple(x.shape))
    fields = neuron_fields(net, shapes)
    side = choose_side([tuple(y.shape) for y in maps.values() if y.ndim == 3], max_channels=max_channels,
                       budget_bytes=budget_bytes)
    while True:
        payload = _payload(subject, net, x, maps, shapes, summary, fields, side, max_channels)
        smaller = SIDES[SIDES.index(side) + 1:] if side in SIDES[:-1] else ()
        if len(embed_json(payload)) <= max_payload_bytes or not smaller:
            return payload
        side = smaller[0]


def _payload(subject, net, x, maps, shapes, summary, fields, side, max_channels) -> dict:
    rows = {r.name: r for r in summary.rows}
    layers = []
    for node in net.nodes:
        y = maps[node.name]
        r = rows[node.name]
        entry = {"name": node.name, "kind": r.type, "shape": list(r.output_shape), "inputs": list(node.inputs),
                 "params": r.params, "macs": r.macs, "field": fields[node.name]}
        if y.ndim == 3:
            entry["maps"] = encode_maps(y, side=side, max_channels=max_channels)
        else:
            entry["vector"] = encode_vector(y)
        layers.append(entry)
    probs = probabilities(net, maps[net.output_name])
    top = np.argsort(-probs, kind="stable")[:TOP]
    names = subject.classes or [str(i) for i in range(probs.size)]
    payload = {
        "kind": "explore", "name": subject.name, "weights": subject.weights, "image_source": subject.image_source,
        "input": {"shape": list(x.shape), "png": _image_data_url(subject.image)},
        "summary": [{"name": r.name, "type": r.type, "shape": r.shape_text, "params": r.params, "macs": r.macs,
                     "rf": list(r.receptive_field), "jump": list(r.jump)} for r in summary.rows],
        "totals": {"params": summary.total_params, "macs": summary.total_macs},
        "layers": layers, "max_side": side, "max_channels": max_channels,
        "top": [{"class": names[i] if i < len(names) else str(i), "index": int(i), "p": float(probs[i])} for i in top],
        "first_conv": _first_conv_payload(net, x, shapes),
    }
    return payload


def _first_conv_payload(net, x, shapes):
    node = first_conv(net)
    if node is None:
        return None
    layer = node.layer
    geom = layer.geometry(shapes[INPUT])
    w = np.asarray(layer.params["w"])
    b = np.asarray(layer.params["b"]) if "b" in layer.params else np.zeros(w.shape[3])
    return {"layer": node.name, "w_shape": list(w.shape), "w": float32_b64(w), "b": float32_b64(b),
            "x": float32_b64(x), "stride": list(geom.stride), "dilation": list(geom.dilation),
            "pads": [list(p) for p in geom.pads], "filters_shown": min(w.shape[3], MAX_CHANNELS)}

