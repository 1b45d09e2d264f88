"""The locally-connected layer: a CONV without parameter sharing.

The notes: when different parts of an image should learn different features
(faces centred in the frame), "relax the parameter sharing scheme".  Each
output position ``(i, j)`` has its own filters::

    x  (N, H, W, C),   w  (Ho, Wo, kh, kw, C, K),   b  (Ho, Wo, K)
    y[n, i, j, k] = b[i, j, k] + Σ_{a, b', c} x_pad[n, i·sh + a·dh, j·sw + b'·dw, c] · w[i, j, a, b', c, k]

Computed as ``Ho·Wo`` batched GEMMs over the im2col columns.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from ..errors import ShapeError
from .checks import check_grad_shape, check_nhwc, check_same_dtype
from .geometry import Geometry2D, conv_geometry
from .im2col import col2im, pad_input, unpad, window_view


@dataclass
class LocalCache:
    x: object
    w: object
    geom: Geometry2D
    has_bias: bool


def _cols(xpad, geom):
    """``(Ho·Wo, N, kh·kw·C)`` columns, position-major for the batched GEMM."""
    xp = get_array_module(xpad)
    v = window_view(xpad, geom)
    n, ho, wo, kh, kw, c = v.shape
    return xp.ascontiguousarray(v.transpose(1, 2, 0, 3, 4, 5)).reshape(ho * wo, n, kh * kw * c)


def locally_connected2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, fit="error", layer="locally_connected2d"):
    check_nhwc(x, layer)
    check_same_dtype(layer, x, w=w, b=b)
    xp = get_array_module(x)
    n, h, wd, c = x.shape
    if w.ndim != 6:
        raise ShapeError(f"{layer}: `w` must have shape (Ho, Wo, kh, kw, C, K); received shape {tuple(w.shape)}.")
    ho_w, wo_w, kh, kw, cw, k = w.shape
    geom = conv_geometry((h, wd), (kh, kw), stride=stride, padding=padding, dilation=dilation, fit=fit, layer=layer)
    ho, wo = geom.out_hw
    if (ho_w, wo_w, cw) != (ho, wo, c):
        raise ShapeError(
            f"{layer}: `w` must have shape ({ho}, {wo}, {kh}, {kw}, {c}, {k}) for x of shape {tuple(x.shape)}; "
            f"received shape {tuple(w.shape)}."
        )
    if b is not None and tuple(b.shape) != (ho, wo, k):
        raise ShapeError(f"{layer}: `b` must have shape ({ho}, {wo}, {k}); received shape {tuple(b.shape)}.")
    cols = _cols(pad_input(x, geom), geom)
    y = xp.matmul(cols, w.reshape(ho * wo, kh * kw * c, k))  # (Ho·Wo, N, K)
    y = xp.ascontiguousarray(y.reshape(ho, wo, n, k).transpose(2, 0, 1, 3))
    if b is not None:
        y += b
    return y, LocalCache(x, w, geom, b is not None)


def locally_connected2d_backward(dy, cache: LocalCache, *, need_dx=True):
    """Returns ``(dx, dw, db)``; ``db`` is None without a bias, ``dx`` None when not needed."""
    xp = get_array_module(dy)
    x, w, geom = cache.x, cache.w, cache.geom
    n, h, wd, c = x.shape
    ho, wo, kh, kw, _, k = w.shape
    check_grad_shape(dy, (n, ho, wo, k), "locally_connected2d_backward")
    db = dy.sum(axis=0) if cache.has_bias else None
    xpad = pad_input(x, geom)
    cols = _cols(xpad, geom)  # (P, N, Q)
    dy_p = xp.ascontiguousarray(dy.transpose(1, 2, 0, 3)).reshape(ho * wo, n, k)
    dw = xp.matmul(cols.transpose(0, 2, 1), dy_p).reshape(w.shape)
    if not need_dx:
        return None, dw, db
    dcols = xp.matmul(dy_p, w.reshape(ho * wo, kh * kw * c, k).transpose(0, 2, 1))  # (P, N, Q)
    dcols = dcols.reshape(ho, wo, n, kh, kw, c).transpose(2, 0, 1, 3, 4, 5)
    dx = unpad(col2im(dcols, xpad.shape, geom), geom, (h, wd))
    return xp.ascontiguousarray(dx), dw, db
