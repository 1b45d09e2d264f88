"""The notes' convolution demo with the engine's numbers: a ``H×W×C`` input, zero-padded,
``K`` filters of ``kh×kw×C`` with biases, stride and dilation → the ``Ho×Wo×K`` output.

Every output value comes from :func:`convnet.ops.conv.conv2d_forward` (float64, small integers,
so a learner can check a dot product by hand); the page only shows which window, filter and
output cell belong together and writes the products out.
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import conv2d_forward
from ..ops.im2col import pad_input
from .demo_common import (MAX_DEPTH, MAX_FILTERS, MAX_KERNEL, MAX_SIZE, count, demo_geometry, geometry_dict,
                          integers, nested, pair)

#: the notes' geometry: 5×5×3 input, pad 1, two 3×3×3 filters at stride 2 → 3×3×2
DEFAULTS = dict(size=5, depth=3, filters=2, kernel=3, stride=2, padding=1, dilation=1, seed=0)


def conv_case(*, size=5, depth=3, filters=2, kernel=3, stride=2, padding=1, dilation=1, seed=0):
    """``(x, w, b, geom)``: the demo's integer input (0..2), filters (-1..1), biases (0..1) and geometry."""
    size = pair(size, "size", maximum=MAX_SIZE)
    kernel = pair(kernel, "kernel", maximum=MAX_KERNEL)
    stride = pair(stride, "stride", maximum=MAX_SIZE)
    padding = pair(padding, "padding", minimum=0, maximum=MAX_KERNEL)
    dilation = pair(dilation, "dilation", maximum=MAX_SIZE)
    depth = count(depth, "depth", MAX_DEPTH)
    filters = count(filters, "filters", MAX_FILTERS)
    geom = demo_geometry(size, kernel, stride=stride, padding=padding, dilation=dilation, layer="the demo's CONV")
    rng = np.random.default_rng(seed)
    x = integers(rng, (*size, depth), 0, 2)
    w = integers(rng, (*kernel, depth, filters), -1, 1)
    b = integers(rng, (filters,), 0, 1)
    return x, w, b, geom


def conv_payload(**options) -> dict:
    """The page's numbers: input (padded too), filters, biases, output and the geometry."""
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    x, w, b, geom = conv_case(**opts)
    y, _ = conv2d_forward(x[None], w, b, stride=geom.stride, padding=geom.pads, dilation=geom.dilation)
    return {
        "kind": "conv", "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
        "geometry": geometry_dict(geom),
        "x": nested(x), "x_padded": nested(pad_input(x[None], geom)[0]),
        "w": nested(w), "b": nested(b), "y": nested(y[0]),
    }
