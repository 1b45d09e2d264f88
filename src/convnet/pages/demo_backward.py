""""The backward pass of a convolution is a convolution with spatially flipped filters."

For ``y = conv(x, w)`` with stride ``s``, padding ``p`` and dilation ``d``, the data gradient is
``dx = conv(dy↑, w↻)``: ``dy`` with ``s - 1`` zeros between its values (``dy↑``), zero-padded by
``d·(kh-1)`` on each side, convolved (stride 1, dilation ``d``) with every filter rotated by 180°
and its input and output channels swapped (``w↻[a, b, k, c] = w[kh-1-a, kw-1-b, c, k]``), then the
``p`` padded rows and columns cropped.  The weight gradient is a convolution too: the padded input
convolved with ``dy`` as the filter (stride ``d``, dilation ``s``).

Both are computed here with :func:`convnet.ops.conv.conv2d_forward` and checked equal to
:func:`convnet.ops.conv.conv2d_backward`, the engine's own backward.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..ops.conv import conv2d_backward, conv2d_forward
from ..ops.im2col import pad_input
from .demo_common import geometry_dict, integers, nested
from .demo_conv import DEFAULTS as CONV_DEFAULTS, conv_case

#: the notes' demo geometry with one input channel, so that every map fits beside its gradient
DEFAULTS = {**CONV_DEFAULTS, "depth": 1}


def upsample(dy, stride) -> np.ndarray:
    """``dy (Ho, Wo, K)`` with ``stride - 1`` zeros between neighbouring values along each axis."""
    sh, sw = stride
    ho, wo, k = dy.shape
    up = np.zeros(((ho - 1) * sh + 1, (wo - 1) * sw + 1, k), dtype=dy.dtype)
    up[::sh, ::sw] = dy
    return up


def flipped(w) -> np.ndarray:
    """Every filter rotated by 180° with input and output channels swapped: ``(kh, kw, K, C)``."""
    return np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))


def backward_as_convolutions(x, w, dy, geom):
    """``(dx, dw)`` computed as forward convolutions (see the module docstring)."""
    (dh, dw_), (kh, kw) = geom.dilation, geom.kernel
    full = ((dh * (kh - 1),) * 2, (dw_ * (kw - 1),) * 2)
    dx_padded, _ = conv2d_forward(upsample(dy, geom.stride)[None], flipped(w), padding=full, dilation=geom.dilation)
    (pt, _), (pl, _) = geom.pads
    h, wd = x.shape[:2]
    dx = dx_padded[0, pt:pt + h, pl:pl + wd]
    xpad = pad_input(x[None], geom)[0]
    per_channel = np.ascontiguousarray(xpad.transpose(2, 0, 1)[..., None])  # (C, Hp, Wp, 1)
    dwc, _ = conv2d_forward(per_channel, np.ascontiguousarray(dy[:, :, None, :]), stride=geom.dilation,
                            dilation=geom.stride, fit="crop")
    return dx, dx_padded[0], dwc.transpose(1, 2, 0, 3)


def backward_payload(**options) -> dict:
    """The forward numbers, an upstream gradient, the engine's dx and dw, and the same as convolutions."""
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    x, w, b, geom = conv_case(**opts)
    y, cache = conv2d_forward(x[None], w, b, stride=geom.stride, padding=geom.pads, dilation=geom.dilation)
    dy = integers(np.random.default_rng([opts["seed"], 1]), y.shape[1:], -1, 2)
    dx, dw, _ = conv2d_backward(dy[None], cache)
    dx_conv, dx_padded, dw_conv = backward_as_convolutions(x, w, dy, geom)
    if not (np.array_equal(dx[0], dx_conv) and np.array_equal(dw, dw_conv)):
        raise ConfigError("backward demo: the flipped-filter convolution differs from conv2d_backward; "
                          "this is a bug, please report it.")
    return {
        "kind": "backward", "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
        "geometry": geometry_dict(geom), "x": nested(x), "w": nested(w), "y": nested(y[0]), "dy": nested(dy),
        "dy_up": nested(upsample(dy, geom.stride)), "w_flipped": nested(flipped(w)),
        "dx_padded": nested(dx_padded), "dx": nested(dx[0]), "dw": nested(dw),
        "full_pad": [geom.dilation[0] * (geom.kernel[0] - 1), geom.dilation[1] * (geom.kernel[1] - 1)],
    }
