"""FC → CONV: an FC layer that looks at an ``H×W×C`` volume is a CONV layer with ``H×W`` filters
and no padding — the same weights, reshaped (convnet flattens in NHWC order, so the reshape is
``w.reshape(H, W, C, K)``) — and the same numbers come out.  On a larger input the CONV twin
slides: each cell of its score map is the FC layer applied to one crop.

Numbers from :func:`convnet.ops.dense.dense_forward` and :func:`convnet.ops.conv.conv2d_forward`.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..ops.conv import conv2d_forward
from ..ops.dense import dense_forward
from .demo_common import MAX_DEPTH, MAX_FILTERS, count, integers, nested

#: a 7×7 volume, as the notes' 7×7×512 → FC-4096 (smaller, so that every number can be drawn)
DEFAULTS = dict(size=7, depth=3, filters=4, seed=0)
#: rows and columns the larger input adds, so that the CONV twin slides to a (1 + EXTRA)² score map
EXTRA = 2


def fc_conv_payload(*, size=None, depth=None, filters=None, seed=None, **unused) -> dict:
    """The FC layer's output, its CONV twin's (equal), and the twin slid over a larger input."""
    opts = {**DEFAULTS, **{k: v for k, v in dict(size=size, depth=depth, filters=filters, seed=seed).items()
                           if v is not None}}
    if isinstance(opts["size"], tuple):
        if opts["size"][0] != opts["size"][1]:
            raise ConfigError(f"Argument `size` of the fc-conv demo must be square; received {opts['size']}.")
        opts["size"] = opts["size"][0]
    h = count(opts["size"], "size", 9)
    c = count(opts["depth"], "depth", MAX_DEPTH)
    k = count(opts["filters"], "filters", MAX_FILTERS)
    rng = np.random.default_rng(opts["seed"])
    big = integers(rng, (h + EXTRA, h + EXTRA, c), 0, 2)
    x = big[:h, :h]  # the crop the FC layer sees
    w_fc = integers(rng, (h * h * c, k), -1, 1)
    b = integers(rng, (k,), 0, 1)
    fc, _ = dense_forward(np.ascontiguousarray(x).reshape(1, -1), w_fc, b)
    w_conv = w_fc.reshape(h, h, c, k)
    conv, _ = conv2d_forward(np.ascontiguousarray(x)[None], w_conv, b)
    slid, _ = conv2d_forward(big[None], w_conv, b)
    crops = np.array([[dense_forward(np.ascontiguousarray(big[i:i + h, j:j + h]).reshape(1, -1), w_fc, b)[0][0]
                       for j in range(EXTRA + 1)] for i in range(EXTRA + 1)])
    if not (np.array_equal(fc[0], conv[0, 0, 0]) and np.array_equal(crops, slid[0])):
        raise ConfigError("fc-conv demo: the CONV twin differs from the FC layer; this is a bug, please report it.")
    return {
        "kind": "fc-conv", "options": opts, "x": nested(x), "x_big": nested(big), "w_fc": nested(w_fc),
        "w_conv": nested(w_conv), "b": nested(b), "fc": nested(fc[0]), "conv": nested(conv[0]),
        "slid": nested(slid[0]), "extra": EXTRA,
    }
