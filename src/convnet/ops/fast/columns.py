"""im2col + GEMM in blocks: the columns of a few MiB of output rows at a time, in one reused buffer.

The notes' method (:mod:`convnet.ops.conv`) builds the column matrix of a whole chunk of the
batch; here a block of output rows holds about :func:`block_target` bytes of columns, copied into a
scratch buffer (:mod:`convnet.ops.scratch`) that the next block and the next call reuse, so the
copy and the GEMM that reads it stay in the caches.  Groups are one batched matmul.

Backward (:func:`backward`): ``dw`` from the recomputed columns block by block, ``dx`` from the
column gradients ``dy @ wᵀ`` added back by col2im — compiled as a gather with numba (each input
position sums the entries that read it, straight into the unpadded ``dx``), else NumPy's slice adds
into a padded ``dx``.  Two more ways to ``dx`` live here: :func:`dx_by_columns` (column gradients
only, for a layer whose ``dw`` comes from elsewhere) and :func:`dx_by_planes` (few input channels).
"""
from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from .. import scratch
from ..geometry import Geometry2D
from ..im2col import col2im, column_blocks, pad_input, unpad, window_view
from .. import kernels
from ..kernels import col2im as col2im_kernels

#: target size of one block of columns: small enough to stay in the caches
BLOCK_BYTES = 2 * 2**20
#: bytes of column gradients and planes :func:`dx_by_planes` makes at once (whole images, at least
#: one): near the caches, and under the heap's mmap threshold (:mod:`convnet.runtime`), above
#: which every call's fresh arrays fault in page by page
PLANES_CHUNK_BYTES = 8 * 2**20


def block_target(weight_bytes: int, workspace_bytes: int) -> int:
    """Bytes of columns per block: :data:`BLOCK_BYTES`, or 8× the weight matrix when that is larger
    (every block's GEMM streams the weights once more), never over ``workspace_bytes``."""
    return min(max(BLOCK_BYTES, 8 * weight_bytes), workspace_bytes)


def first_block_bytes(n: int, ho: int, row_bytes: int, weight_bytes: int, workspace_bytes: int) -> int:
    """Bytes of the largest (first) block of columns of ``n`` images of ``ho`` output rows of
    ``row_bytes`` each: the size of the reused buffer."""
    n0, n1, h0, h1 = next(column_blocks(n, ho, row_bytes, block_target(weight_bytes, workspace_bytes)))
    return (n1 - n0) * (h1 - h0) * row_bytes


def _column_blocks(xpad, geom: Geometry2D, workspace_bytes: int, weight_bytes: int):
    """Yield ``(n0, n1, h0, h1, cols)``: the columns ``(rows, kh·kw·C)`` of output rows ``h0:h1``
    of images ``n0:n1``, copied into one buffer reused for every block."""
    xp = get_array_module(xpad)
    view = window_view(xpad, geom)
    n, ho, wo, kh, kw, c = view.shape
    row_bytes = wo * kh * kw * c * xpad.itemsize
    buf = None
    for n0, n1, h0, h1 in column_blocks(n, ho, row_bytes, block_target(weight_bytes, workspace_bytes)):
        v = view[n0:n1, h0:h1]
        if buf is None:  # the first block is the largest
            buf = scratch.empty("im2col.cols", v.size, xpad.dtype, xp)
        cols = buf[: v.size].reshape(v.shape)
        cols[...] = v
        yield n0, n1, h0, h1, cols.reshape(-1, kh * kw * c)


def _grouped_matmul(cols, wmat, groups, positions):
    """``cols (M, P·C)`` times ``wmat (P·Cg, K)`` group by group → ``(M, K)``.

    Column index of ``cols`` is ``p·C + g·Cg + c`` (kernel position major, channel minor);
    output channel ``k`` belongs to group ``k // (K / groups)``.
    """
    xp = get_array_module(cols)
    m = cols.shape[0]
    k = wmat.shape[1]
    kg, cg = k // groups, wmat.shape[0] // positions
    cols_g = cols.reshape(m, positions, groups, cg).transpose(2, 0, 1, 3).reshape(groups, m, positions * cg)
    w_g = wmat.reshape(positions * cg, groups, kg).transpose(1, 0, 2)
    y_g = xp.matmul(cols_g, w_g)  # (G, M, Kg)
    return y_g.transpose(1, 0, 2).reshape(m, k)


def _grouped_dw(cols, dy2, groups, positions):
    """``dw (P·Cg, K)`` from ``cols (M, P·C)`` and ``dy2 (M, K)``."""
    xp = get_array_module(cols)
    if groups == 1:
        return cols.T @ dy2
    m, pc = cols.shape
    c = pc // positions
    cg, k = c // groups, dy2.shape[1]
    kg = k // groups
    cols_g = cols.reshape(m, positions, groups, cg).transpose(2, 1, 3, 0).reshape(groups, positions * cg, m)
    dy_g = dy2.reshape(m, groups, kg).transpose(1, 0, 2)
    dw_g = xp.matmul(cols_g, dy_g)  # (G, P·Cg, Kg)
    return dw_g.transpose(1, 0, 2).reshape(positions * cg, k)


def _grouped_dcols(dy2, wmat, groups, positions):
    """``dcols (M, P·C)`` from ``dy2 (M, K)`` and ``wmat (P·Cg, K)`` (grouped)."""
    xp = get_array_module(dy2)
    m, k = dy2.shape
    kg = k // groups
    cg = wmat.shape[0] // positions
    dy_g = dy2.reshape(m, groups, kg).transpose(1, 0, 2)  # (G, M, Kg)
    w_g = wmat.reshape(positions * cg, groups, kg).transpose(1, 2, 0)  # (G, Kg, P·Cg)
    dc_g = xp.matmul(dy_g, w_g)  # (G, M, P·Cg)
    return dc_g.reshape(groups, m, positions, cg).transpose(1, 2, 0, 3).reshape(m, positions * groups * cg)


def conv(x, w, geom: Geometry2D, groups: int, workspace_bytes: int):
    """``(N, Ho, Wo, K)``: the GEMM of each block of columns written into its rows of ``y``."""
    xp = get_array_module(x)
    n = x.shape[0]
    kh, kw, cg, k = w.shape
    ho, wo = geom.out_hw
    wmat = w.reshape(kh * kw * cg, k)
    y = xp.empty((n, ho, wo, k), dtype=x.dtype)
    for n0, n1, h0, h1, cols in _column_blocks(pad_input(x, geom), geom, workspace_bytes, w.nbytes):
        yb = y[n0:n1, h0:h1].reshape(-1, k)
        if groups == 1:
            xp.matmul(cols, wmat, out=yb)
        else:
            yb[...] = _grouped_matmul(cols, wmat, groups, kh * kw)
    return y


def backward(x, w, dy, geom: Geometry2D, groups: int, workspace_bytes: int, *, need_dx: bool, gather: bool):
    """``(dx, dw)`` in one pass over the blocks of columns of ``x``: ``dw`` summed block by block, and
    (``need_dx``) each block's column gradients added into ``dx`` — by the compiled gather
    (``gather``: NumPy arrays, numba on), else by NumPy's col2im into a padded ``dx``."""
    xp = get_array_module(x)
    n, h, wd, c = x.shape
    kh, kw, _, k = w.shape
    ho, wo = geom.out_hw
    positions = kh * kw
    wmat = w.reshape(positions * (c // groups), k)
    xpad = pad_input(x, geom)
    dxpad = None
    if need_dx:
        dxpad = xp.zeros(x.shape if gather else xpad.shape, dtype=x.dtype)
    dw = None
    dy = xp.ascontiguousarray(dy)
    sh = geom.stride[0]
    dbuf = None
    for n0, n1, h0, h1, cols in _column_blocks(xpad, geom, workspace_bytes, w.nbytes):
        dyb = dy[n0:n1, h0:h1].reshape(-1, k)
        if dw is None:  # the first block's product is the sum so far: no zeroed buffer to add it to
            dw = _grouped_dw(cols, dyb, groups, positions).astype(x.dtype, copy=False)
        else:
            dw += _grouped_dw(cols, dyb, groups, positions)
        if not need_dx:
            continue
        if groups == 1:
            if dbuf is None:  # the first block is the largest
                dbuf = scratch.empty("im2col.dcols", cols.size, x.dtype, xp)
            dcols = xp.matmul(dyb, wmat.T, out=dbuf[: cols.size].reshape(cols.shape))
        else:
            dcols = _grouped_dcols(dyb, wmat, groups, positions)
        dcols = dcols.reshape(n1 - n0, h1 - h0, wo, kh, kw, c)
        if gather:
            col2im_kernels.col2im_add(dcols, h0, geom, dxpad[n0:n1])
        else:
            col2im(dcols, None, geom, out=dxpad[n0:n1, h0 * sh :])
    if not need_dx:
        return None, dw.reshape(w.shape)
    dx = dxpad if gather else unpad(dxpad, geom, (h, wd))
    return xp.ascontiguousarray(dx), dw.reshape(w.shape)


def dx_by_columns(dy, w, geom: Geometry2D, x_shape, workspace_bytes: int):
    """``dx`` of an ungrouped convolution on NumPy arrays with numba on: column gradients ``dy @ wᵀ``
    block by block (BLAS reads the transpose in place), added back by the compiled col2im — no
    columns of ``x`` (for a layer whose ``dw`` comes from another kernel)."""
    n, h, wd, c = x_shape
    kh, kw, _, k = w.shape
    ho, wo = geom.out_hw
    wmat_t = w.reshape(kh * kw * c, k).T
    dx = np.zeros(x_shape, dtype=dy.dtype)
    dy = np.ascontiguousarray(dy)
    row_bytes = wo * kh * kw * c * dy.itemsize
    buf = None
    for n0, n1, h0, h1 in column_blocks(n, ho, row_bytes, block_target(w.nbytes, workspace_bytes)):
        rows = (n1 - n0) * (h1 - h0) * wo
        if buf is None:  # the first block is the largest
            buf = scratch.empty("im2col.dcols", rows * kh * kw * c, dy.dtype)
        dcols = np.matmul(dy[n0:n1, h0:h1].reshape(rows, k), wmat_t, out=buf[: rows * kh * kw * c].reshape(rows, -1))
        col2im_kernels.col2im_add(dcols.reshape(n1 - n0, h1 - h0, wo, kh, kw, c), h0, geom, dx[n0:n1])
    return dx


def planes_bytes(n: int, geom: Geometry2D, c: int, itemsize: int, workspace_bytes: int) -> int:
    """Bytes of :func:`dx_by_planes`'s temporaries: the tap-major column gradients and the channel
    planes of one chunk of images (as many as fit in ``workspace_bytes`` and
    :data:`PLANES_CHUNK_BYTES`, at least one)."""
    per_image = _planes_per_image(geom, c, itemsize)
    return _planes_chunk(n, per_image, workspace_bytes) * per_image


def _planes_per_image(geom: Geometry2D, c: int, itemsize: int) -> int:
    (kh, kw), (ho, wo) = geom.kernel, geom.out_hw
    return (kh * kw * ho * wo + geom.height.size * geom.width.size) * c * itemsize


def _planes_chunk(n: int, per_image: int, workspace_bytes: int) -> int:
    return max(1, min(n, min(workspace_bytes, PLANES_CHUNK_BYTES) // per_image))


def dx_by_planes(dy, w, geom: Geometry2D, x_shape, workspace_bytes: int):
    """``dx`` of an ungrouped convolution with few input channels: the column gradients tap-major,
    ``(kh·kw·C, n·Ho·Wo) = W @ dyᵀ`` for a chunk of images (within ``workspace_bytes``), added back
    one tap at a time as a shifted (strided) slice of channel planes ``(C, n, H, W)`` — runs of W
    values where col2im's are runs of C — then laid out NHWC.  With numba on (NumPy arrays) the
    planes are filled by a compiled gather instead of the ``kh·kw`` slice additions."""
    xp = get_array_module(dy)
    n, h, wd, c = x_shape
    kh, kw, _, k = w.shape
    ho, wo = geom.out_hw
    sh, sw = geom.stride
    wmat = w.reshape(kh * kw * c, k)
    step = _planes_chunk(n, _planes_per_image(geom, c, dy.itemsize), workspace_bytes)
    rows = [geom.height.tap_range(a) for a in range(kh)]
    cols = [geom.width.tap_range(b) for b in range(kw)]
    dx = xp.empty(x_shape, dtype=dy.dtype)
    compiled = kernels.usable(dy, w)
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        g = (wmat @ dy[n0:n1].reshape(-1, k).T).reshape(kh, kw, c, n1 - n0, ho, wo)
        if compiled:
            planes = xp.empty((c, n1 - n0, h, wd), dtype=dy.dtype)
            col2im_kernels.planes_add(g, geom, planes)
            dx[n0:n1] = planes.transpose(1, 2, 3, 0)
            continue
        planes = xp.zeros((c, n1 - n0, h, wd), dtype=dy.dtype)
        for a, (i0, i1, r0) in enumerate(rows):
            for b, (j0, j1, q0) in enumerate(cols):
                if i1 > i0 and j1 > j0:
                    planes[:, :, r0 : r0 + (i1 - i0 - 1) * sh + 1 : sh, q0 : q0 + (j1 - j0 - 1) * sw + 1 : sw] += \
                        g[a, b, :, :, i0:i1, j0:j1]
        dx[n0:n1] = planes.transpose(1, 2, 3, 0)
    return dx
