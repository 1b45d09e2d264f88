"""Max pooling with its switches: each output is the largest value of its window, the switch
records which position held it, and backward sends the whole upstream gradient there (the
first maximum in row-major order wins a tie; the others get zero).

Numbers from :func:`convnet.ops.pool.max_pool2d_forward` and :func:`~convnet.ops.pool.max_pool2d_backward`.
"""
from __future__ import annotations

import numpy as np

from ..ops.pool import max_pool2d_backward, max_pool2d_forward
from .demo_common import MAX_DEPTH, MAX_KERNEL, MAX_SIZE, count, demo_geometry, geometry_dict, integers, nested, pair

#: the notes' picture: a 4×4 slice, 2×2 windows at stride 2 → 2×2
DEFAULTS = dict(size=4, depth=1, kernel=2, stride=2, padding=0, seed=0)


def pool_payload(*, size=None, depth=None, kernel=None, stride=None, padding=None, seed=None, **unused) -> dict:
    """Input (0..9, ties likely), output, switches (window tap ``a·kw + b``), upstream gradient and dx."""
    opts = {**DEFAULTS, **{k: v for k, v in dict(size=size, depth=depth, kernel=kernel, stride=stride,
                                                   padding=padding, seed=seed).items() if v is not None}}
    hw = pair(opts["size"], "size", maximum=MAX_SIZE)
    k = pair(opts["kernel"], "kernel", maximum=MAX_KERNEL)
    s = pair(opts["stride"], "stride", maximum=MAX_SIZE)
    p = pair(opts["padding"], "padding", minimum=0, maximum=MAX_KERNEL)
    c = count(opts["depth"], "depth", MAX_DEPTH)
    demo_geometry(hw, k, stride=s, padding=p, dilation=1, layer="the demo's POOL")  # the CLI's wording
    rng = np.random.default_rng(opts["seed"])
    x = integers(rng, (*hw, c), 0, 9)
    y, cache = max_pool2d_forward(x[None], pool_size=k, stride=s, padding=p)
    dy = integers(rng, y.shape, 1, 9)
    dx = max_pool2d_backward(dy, cache)
    return {
        "kind": "pool", "options": {kk: (list(v) if isinstance(v, tuple) else v) for kk, v in opts.items()},
        "geometry": geometry_dict(cache.geom), "x": nested(x), "y": nested(y[0]),
        "switches": np.asarray(cache.switches[0]).astype(int).tolist(), "dy": nested(dy[0]), "dx": nested(dx[0]),
    }
