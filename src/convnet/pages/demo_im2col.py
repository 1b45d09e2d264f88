"""im2col as the notes tell it: every window stretched into one row of a matrix, the filters
into the columns of another, and the whole convolution one matrix product (GEMM).

The rows come from :func:`convnet.ops.im2col.im2col` and the product is checked here against
:func:`convnet.ops.conv.conv2d_forward`.  The notes write ``X_col`` with one *column* per window
(``363×3025`` for AlexNet's first layer); convnet stores its transpose, one *row* per window, so
that the product is already NHWC — the page shows both.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..ops.conv import conv2d_forward
from ..ops.geometry import conv_geometry
from ..ops.im2col import im2col, pad_input
from .demo_common import geometry_dict, nested
from .demo_conv import DEFAULTS, conv_case


def notes_arithmetic(size=227, kernel=11, stride=4, depth=3, filters=96) -> dict:
    """The notes' AlexNet example: 227×227×3 by 96 filters of 11×11×3 at stride 4."""
    geom = conv_geometry((size, size), (kernel, kernel), stride=stride, padding=0)
    ho, wo = geom.out_hw
    return {"size": size, "kernel": kernel, "stride": stride, "depth": depth, "filters": filters, "out": ho,
            "column": kernel * kernel * depth, "windows": ho * wo, "params": (kernel * kernel * depth + 1) * filters}


def im2col_payload(**options) -> dict:
    """The window matrix, the weight matrix, their product (with biases) and the notes' sizes."""
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    x, w, b, geom = conv_case(**opts)
    cols = im2col(pad_input(x[None], geom), geom)  # (Ho·Wo, kh·kw·C): one row per window
    wmat = w.reshape(-1, w.shape[3])  # (kh·kw·C, K): one column per filter
    product = cols @ wmat + b
    y, _ = conv2d_forward(x[None], w, b, stride=geom.stride, padding=geom.pads, dilation=geom.dilation)
    if not np.array_equal(product.reshape(y.shape), y):
        raise ConfigError("im2col demo: the GEMM differs from conv2d_forward; this is a bug, please report it.")
    kh, kw, c, _ = w.shape
    return {
        "kind": "im2col", "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
        "geometry": geometry_dict(geom), "x_padded": nested(pad_input(x[None], geom)[0]),
        "w": nested(w), "b": nested(b), "cols": nested(cols), "wmat": nested(wmat), "product": nested(product),
        "y": nested(y[0]),
        "column_labels": [[a, bb, ch] for a in range(kh) for bb in range(kw) for ch in range(c)],
        "notes": notes_arithmetic(),
    }
