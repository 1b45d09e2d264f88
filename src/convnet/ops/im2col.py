"""NHWC im2col / col2im: the notes' "convolution as one matrix multiply".

For an NHWC input ``x`` of shape ``(N, H, W, C)`` and a window of ``kh × kw``
(dilation ``dh, dw``, stride ``sh, sw``) the column matrix has one row per output
position and one column per weight::

    cols.shape == (N, Ho, Wo, kh, kw, C)  ->  reshape (N·Ho·Wo, kh·kw·C)

so that ``cols @ w.reshape(kh·kw·C, K)`` lands directly in NHWC.  (The notes'
CHW example stretches 11×11×3 blocks of a 227×227×3 image into 363 values for
55·55 = 3025 positions: here that matrix is ``(3025, 363)``.)

``col2im`` is the mirror image: it adds each column entry back to the input
position it was read from, looping only over the ``kh × kw`` kernel offsets with
strided slice adds — never ``np.add.at``.
"""
from __future__ import annotations

from .geometry import Geometry2D
from ..backend import as_strided, get_array_module


def pad_input(x, geom: Geometry2D, value=0.0):
    """Pad an NHWC batch by the geometry's pads with ``value`` (0, or -inf for max pooling).

    One allocation and one copy of the interior (``np.pad`` is several times slower).
    """
    xp = get_array_module(x)
    (pt, pb), (pl, pr) = geom.pads
    if not (pt or pb or pl or pr):
        return x
    n, h, w, c = x.shape
    out = xp.empty((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
    out[:, pt : pt + h, pl : pl + w, :] = x
    out[:, :pt] = value
    out[:, pt + h :] = value
    out[:, pt : pt + h, :pl] = value
    out[:, pt : pt + h, pl + w :] = value
    return out


def window_view(xpad, geom: Geometry2D):
    """A read-only strided view ``(N, Ho, Wo, kh, kw, C)`` of a padded NHWC batch.

    No data is copied; ``view[n, i, j, a, b, c] == xpad[n, i·sh + a·dh, j·sw + b·dw, c]``.
    """
    n, _, _, c = xpad.shape
    ho, wo = geom.out_hw
    kh, kw = geom.kernel
    sh, sw = geom.stride
    dh, dw = geom.dilation
    s_n, s_h, s_w, s_c = xpad.strides
    return as_strided(xpad, (n, ho, wo, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c))


def im2col(xpad, geom: Geometry2D):
    """The column matrix ``(N·Ho·Wo, kh·kw·C)`` of an already padded NHWC batch (one copy)."""
    xp = get_array_module(xpad)
    n, c = xpad.shape[0], xpad.shape[3]
    ho, wo = geom.out_hw
    kh, kw = geom.kernel
    cols = xp.ascontiguousarray(window_view(xpad, geom))
    return cols.reshape(n * ho * wo, kh * kw * c)


def column_blocks(n: int, ho: int, row_bytes: int, target_bytes: int):
    """Split the ``n·ho`` output rows of a convolution into blocks whose columns take about
    ``target_bytes`` (``row_bytes``: the columns of one output row).

    Yields ``(n0, n1, h0, h1)``: several whole images (``h0, h1 = 0, ho``) when one image's
    columns fit, else a range of output rows of one image — so that the output block
    ``y[n0:n1, h0:h1]`` is always contiguous.  Blocks of a few MiB stay in the caches, so the
    column copy and the GEMM that reads it run faster than over one large buffer.
    """
    target_bytes = max(int(target_bytes), 1)
    if ho * row_bytes <= target_bytes:
        step = max(1, target_bytes // max(ho * row_bytes, 1))
        for n0 in range(0, n, step):
            yield n0, min(n, n0 + step), 0, ho
        return
    rows = max(1, target_bytes // max(row_bytes, 1))
    for i in range(n):
        for h0 in range(0, ho, rows):
            yield i, i + 1, h0, min(ho, h0 + rows)


def col2im(dcols, padded_shape, geom: Geometry2D, out=None):
    """Scatter-add columns back to a padded NHWC array of ``padded_shape``.

    ``dcols`` has shape ``(N, Ho', Wo, kh, kw, C)``: all ``Ho`` output rows, or the first
    ``Ho'`` of them (a block, with ``out`` a view starting at the block's first input row).  Each kernel offset ``(a, b)``
    adds one strided slice: ``dxpad[:, a·dh : a·dh + sh·Ho : sh, b·dw : ... : sw] += dcols[..., a, b, :]``.
    When ``out`` is given the columns are added into it (it must be ``padded_shape``).
    """
    xp = get_array_module(dcols)
    dxpad = xp.zeros(padded_shape, dtype=dcols.dtype) if out is None else out
    ho, wo = dcols.shape[1], dcols.shape[2]
    kh, kw = geom.kernel
    sh, sw = geom.stride
    dh, dw = geom.dilation
    for a in range(kh):
        r0 = a * dh
        for b in range(kw):
            c0 = b * dw
            dxpad[:, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw, :] += dcols[:, :, :, a, b, :]
    return dxpad


def unpad(xpad, geom: Geometry2D, hw):
    """Remove the pads added by :func:`pad_input` (original height/width ``hw``)."""
    (pt, _), (pl, _) = geom.pads
    h, w = hw
    return xpad[:, pt : pt + h, pl : pl + w, :]
