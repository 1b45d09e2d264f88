"""2-D convolution (cross-correlation, as every framework computes it), NHWC / HWIO.

Shapes::

    x  (N, H, W, C)                 activations, NHWC
    w  (kh, kw, C // groups, K)     kernels, HWIO
    b  (K,) or None
    y  (N, Ho, Wo, K)               Ho = (H - dh·(kh-1) - 1 + Pt + Pb) / sh + 1, same for Wo

    y[n, i, j, k] = b[k] + Σ_{a, b', c} x_pad[n, i·sh + a·dh, j·sw + b'·dw, g·Cg + c] · w[a, b', c, k]

with ``g = k // (K / groups)`` the group of output channel ``k``.

Forward is im2col + GEMM (per group), the columns built for a block of output rows
at a time (about ``BLOCK_BYTES``, never over ``workspace_bytes``) in one reused buffer.  A 1×1, stride-1,
unpadded, ungrouped convolution is a plain GEMM ``(N·H·W, C) @ (C, K)`` with no
im2col at all.  Backward: ``dw`` by GEMM with the same (recomputed) columns,
``dx`` by GEMM into columns and :func:`~convnet.ops.im2col.col2im`.

Example (the notes' demo: 5×5×3 input, two 3×3 filters, stride 2, pad 1 → 3×3×2)::

    >>> x = np.ones((1, 5, 5, 3)); w = np.ones((3, 3, 3, 2)); b = np.zeros(2)
    >>> conv2d_forward(x, w, b, stride=2, padding=1)[0].shape
    (1, 3, 3, 2)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .checks import check_grad_shape, check_nhwc, check_same_dtype
from .geometry import Geometry2D, conv_geometry, is_int
from .im2col import col2im, column_blocks, pad_input, unpad, window_view
from . import kernels, scratch, smallmap
from .kernels import col2im as col2im_kernels
from .kernels import direct
from .winograd import multiplies as winograd_multiplies
from .winograd import winograd_applicable, winograd_conv, winograd_dw, winograd_dx

#: default cap on the im2col column buffer (bytes); the batch is chunked to fit
DEFAULT_WORKSPACE_BYTES = 64 * 2**20
#: target size of one block of im2col columns: small enough to stay in the caches
BLOCK_BYTES = 2 * 2**20

ALGORITHMS = ("auto", "im2col", "gemm1x1", "winograd2", "winograd4", "direct", "smallmap")


def direct_applicable(k: int, groups: int, *, numpy: bool = True) -> bool:
    """A compiled direct-convolution kernel exists: NumPy arrays, numba on, ungrouped, K in the table."""
    return numpy and groups == 1 and kernels.enabled() and direct.supports(k)


def direct_pays(c: int, k: int) -> bool:
    """Where the direct loops measured faster than im2col's thin GEMM: K ≤ 16; K ≤ 32 with
    C ≤ 32; K = 64 on an RGB-like input (C ≤ 4: 224×224×3 → 64 measured 2.0-2.9 ms against
    im2col's 4.3-5.4, whose GEMM has only 27 rows of weights; the 7×7/2 stem, once a window's
    row of taps became one run, 2.9-3.4 against 3.6-5.2 for one image and as fast at N = 8)."""
    return k <= 16 or (k <= 32 and c <= 32) or (k == 64 and c <= 4)


def choose_algorithm(
    geom: Geometry2D, c: int, k: int, groups: int, requested: str = "auto", *, n: int = 1, numpy: bool = True
) -> str:
    """The algorithm a convolution of ``n`` samples runs with.

    ``"auto"``: a 1×1 stride-1 unpadded ungrouped layer is a plain GEMM.  A 3×3
    stride-1 layer (C·K ≥ 32·32) uses Winograd F(4×4, 3×3) when a multiply count
    that includes its overheads is at most half of im2col's ``9·N·Ho·Wo·C·K``, that
    one weighted by ``1 + 32/K`` (a GEMM with few columns runs well under the roofline:
    16×16×32 → 32 at N = 64 measured 3.96 ms with F(4,3) against 7.06 with im2col)::

        36·T·C·K  (the α² GEMMs over T = N·⌈Ho/4⌉·⌈Wo/4⌉ tiles, padding waste included)
        + 324·C·K  (filter transform) + T·(1296·C + 576·K)  (input and output transforms)

    which keeps im2col for 7×7 and 14×14 maps of a single image (where the measured
    gain vanished).  The transform terms are those of the Kronecker GEMMs; the compiled
    transforms do about a third of that, but the terms also stand for what a multiply count
    misses (the filter transform's α²·C·K writes, thin GEMMs over few tiles), and with them
    the rule kept the fastest algorithm on the measured VGG16 / ResNet layers (within 10 %
    at 28×28×256 → 512, N = 1).  With few F(4,3) tiles (T ≤ 64) and C·K ≥ 512·512, F(2,3)
    measured faster than F(4,3) (its filter transform writes 16 instead of 36 matrices and
    its GEMMs are larger: 7×7×512 → 512, N = 8, 12.0-12.7 ms against 16.3-23.1; 28×28×512,
    N = 1, 17.3-19.4 against 19.5-20.3), so ``winograd2`` is used there; at 256 → 512 F(4,3)
    was the faster one (28×28, N = 1: 9.1-9.5 against 10.1-12.1; 4×4, N = 64: 9.3-10.3
    against 11.0-12.1, two full benchmark runs).  Where F(4,3)'s count misses the bound but
    C·K ≥ 512·512, F(2,3) is weighed on its own count (:func:`convnet.ops.winograd.multiplies`:
    ``16·T₂·C·K + 84·C·K + T₂·(144·C + 72·K)`` for T₂ tiles of 2×2 with the compiled transforms,
    the Kronecker GEMMs' terms without numba or on CuPy arrays) against the same bound:
    14×14×512 → 512 at N = 1 then runs F(2,3) (5.5-7.3 ms against im2col's 7.2-8.5, three
    interleaved runs), while 7×7 maps of one image and the narrower 14×14 layers (64-128
    channels: F(2,3) 0.78 against 0.65 ms; 256 → 512: 5.1 against 4.0) keep im2col.
    Narrow layers (:func:`direct_pays`) run the compiled ``direct`` loops when numba is on
    (im2col's GEMM is a thin one there: at N = 64, 32×32×16 → 16 measured 2.4-3.5 ms against im2col's 6-8; 16×16×32 → 32
    2.4-3.7 against F(4,3)'s 3.2-6 and im2col's 4.2, on two threads).  Next, before Winograd:
    maps so small that most taps read the zero padding (:func:`convnet.ops.smallmap.pays`:
    1×1 to 3×3 maps under a 3×3 pad-1 window, N ≥ 8, at most 24 GEMMs an image) run
    ``smallmap``, one GEMM per output
    pixel and kernel row over the taps inside the image (2×2×512 → 512, N = 64: 5.2-6.5 ms
    against F(2,3)'s 10-13.7).  Everything else runs im2col + GEMM.  A requested algorithm
    that does not apply to the layer raises ConfigError.  ``numpy=False`` (CuPy arrays) rules out ``direct``.
    """
    if requested not in ALGORITHMS:
        raise ConfigError(f"Argument `algorithm` must be one of {ALGORITHMS}; received {requested!r}.")
    one_by_one = geom.kernel == (1, 1) and geom.stride == (1, 1) and not geom.has_padding and groups == 1
    if requested == "auto":
        if one_by_one:
            return "gemm1x1"
        if direct_applicable(k, groups, numpy=numpy) and direct_pays(c, k):
            return "direct"
        if smallmap.pays(geom, n, groups):
            return "smallmap"
        if winograd_applicable(geom, groups) and c * k >= 32 * 32:
            ho, wo = geom.out_hw
            t = n * (-(-ho // 4)) * (-(-wo // 4))
            winograd = 36 * t * c * k + 324 * c * k + t * (1296 * c + 576 * k)
            thin = 1 + 32 / k  # im2col's GEMM has only K columns: narrow ones run far below the roofline
            budget = 0.5 * thin * 9 * n * ho * wo * c * k
            if winograd <= budget:
                return "winograd2" if t <= 64 and c * k >= 512 * 512 else "winograd4"
            # few tiles of a wide layer: F(2,3)'s larger GEMMs and cheaper filter transform
            if c * k >= 512 * 512 and winograd_multiplies(n, (ho, wo), c, k, 2, tiled=numpy and kernels.enabled()) <= budget:
                return "winograd2"
        return "im2col"
    if requested == "direct" and not direct_applicable(k, groups, numpy=numpy):
        raise ConfigError(
            f"algorithm='direct' needs numba (pip install convnet[fast]), NumPy arrays, groups=1 and K in "
            f"{sorted(direct.KERNELS)}; received K={k}, groups={groups}."
        )
    if requested == "smallmap" and groups != 1:
        raise ConfigError(f"algorithm='smallmap' needs an ungrouped convolution; received groups={groups}.")
    if requested == "gemm1x1" and not one_by_one:
        raise ConfigError("algorithm='gemm1x1' needs a 1×1, stride-1, unpadded, ungrouped convolution.")
    if requested.startswith("winograd") and not winograd_applicable(geom, groups):
        raise ConfigError(
            f"algorithm={requested!r} needs a 3×3, stride-1, undilated, ungrouped convolution with padding <= 2; "
            f"received kernel {geom.kernel}, stride {geom.stride}, dilation {geom.dilation}, groups {groups}, pads {geom.pads}."
        )
    return requested


@dataclass
class ConvCache:
    """What backward needs: the input (a reference, not a copy), the weights and the geometry."""

    x: object
    w: object
    geom: Geometry2D
    groups: int
    has_bias: bool
    algorithm: str
    workspace_bytes: int


def check_conv_args(x, w, b, groups, op="conv2d"):
    """Validate ranks, dtypes, channel counts and groups; return (C, K)."""
    check_nhwc(x, op)
    check_same_dtype(op, x, w=w, b=b)
    if w.ndim != 4:
        raise ShapeError(f"{op}: `w` must be HWIO of rank 4 (kh, kw, C_in/groups, K); received shape {tuple(w.shape)}.")
    if min(w.shape) < 1:
        raise ShapeError(f"{op}: `w` must have every size positive; received shape {tuple(w.shape)}.")
    if not is_int(groups) or groups < 1:
        raise ConfigError(f"{op}: `groups` must be a positive integer; received {groups!r}.")
    groups = int(groups)
    c, k = x.shape[3], w.shape[3]
    if c % groups:
        raise ConfigError(
            f"{op}: input channels C={c} must be divisible by groups={groups}; received x of shape {tuple(x.shape)}."
        )
    if k % groups:
        raise ConfigError(f"{op}: output channels K={k} must be divisible by groups={groups}; received w of shape {tuple(w.shape)}.")
    if w.shape[2] != c // groups:
        raise ShapeError(
            f"{op}: `w` has {w.shape[2]} input channels per group but x has C={c} channels and groups={groups}; "
            f"expected w of shape ({w.shape[0]}, {w.shape[1]}, {c // groups}, {k}) for x of shape {tuple(x.shape)}."
        )
    if b is not None and tuple(b.shape) != (k,):
        raise ShapeError(f"{op}: `b` must have shape ({k},) to match K={k}; received shape {tuple(b.shape)}.")
    return c, k


def _grouped_matmul(cols, wmat, groups, positions):
    """``cols (M, P·C)`` times ``wmat (P·Cg, K)`` group by group → ``(M, K)``.

    Column index of ``cols`` is ``p·C + g·Cg + c`` (kernel position major, channel minor);
    output channel ``k`` belongs to group ``k // (K / groups)``.
    """
    xp = get_array_module(cols)
    if groups == 1:
        return cols @ wmat
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
    """``dcols (M, P·C)`` from ``dy2 (M, K)`` and ``wmat (P·Cg, K)``."""
    xp = get_array_module(dy2)
    if groups == 1:
        return dy2 @ wmat.T
    m, k = dy2.shape
    kg = k // groups
    cg = wmat.shape[0] // positions
    dy_g = dy2.reshape(m, groups, kg).transpose(1, 0, 2)  # (G, M, Kg)
    w_g = wmat.reshape(positions * cg, groups, kg).transpose(1, 2, 0)  # (G, Kg, P·Cg)
    dc_g = xp.matmul(dy_g, w_g)  # (G, M, P·Cg)
    return dc_g.reshape(groups, m, positions, cg).transpose(1, 2, 0, 3).reshape(m, positions * groups * cg)


def block_target(weight_bytes: int, workspace_bytes: int) -> int:
    """Bytes of im2col columns per block: :data:`BLOCK_BYTES`, or 8× the weight matrix when
    that is larger (every block's GEMM streams the weights once more: 14×14×512 → 512 in two
    blocks measured 1.4× slower than in one), never over ``workspace_bytes``."""
    return min(max(BLOCK_BYTES, 8 * weight_bytes), workspace_bytes)


def _column_blocks(xpad, geom: Geometry2D, workspace_bytes: int, weight_bytes: int):
    """Yield ``(n0, n1, h0, h1, cols)``: the im2col matrix of output rows ``h0:h1`` of images
    ``n0:n1``, ``cols (rows, kh·kw·C)``, copied into one buffer reused for every block.

    A block holds about :func:`block_target` bytes of columns (see
    :func:`~convnet.ops.im2col.column_blocks`), so the whole layer never needs the
    ``kh·kw`` times larger column matrix at once.
    """
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


def conv2d_forward(
    x,
    w,
    b=None,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    fit="error",
    algorithm="auto",
    workspace_bytes=DEFAULT_WORKSPACE_BYTES,
    layer="conv2d",
):
    """Convolve an NHWC batch with HWIO kernels; returns ``(y, cache)``.

    ``padding``: an int, a ``(Ph, Pw)`` pair, ``((top, bottom), (left, right))``,
    ``"same"`` or ``"valid"``.  ``stride``/``dilation``: an int or a pair.
    ``fit``: what to do when the geometry does not divide evenly (see
    :mod:`convnet.ops.geometry`).  ``algorithm``: see :func:`choose_algorithm`.
    """
    check_conv_args(x, w, b, groups, layer)
    groups = int(groups)
    xp = get_array_module(x)
    n, h, wd, c = x.shape
    kh, kw, _, k = w.shape
    geom = conv_geometry((h, wd), (kh, kw), stride=stride, padding=padding, dilation=dilation, fit=fit, layer=layer)
    ho, wo = geom.out_hw
    algorithm = choose_algorithm(geom, c, k, groups, algorithm, n=n, numpy=xp is np)
    has_bias = b is not None
    if algorithm == "gemm1x1":
        y = (x.reshape(n * h * wd, c) @ w.reshape(c, k)).reshape(n, ho, wo, k)
    elif algorithm == "direct":
        y = direct.conv(x, w, geom.out_hw, geom.stride, geom.dilation, (geom.pads[0][0], geom.pads[1][0]), bias=b)
        b = None  # the kernel's sums start at it
    elif algorithm == "smallmap":
        y = smallmap.conv(x, w, geom, bias=b)
        b = None
    elif algorithm.startswith("winograd"):
        y = winograd_conv(x, w, pads=geom.pads, m=int(algorithm[-1]), out_hw=(ho, wo), bias=b,
                          workspace_bytes=workspace_bytes)
        b = None  # added by the output transform
    else:
        wmat = w.reshape(kh * kw * (c // groups), k)
        y = xp.empty((n, ho, wo, k), dtype=x.dtype)
        for n0, n1, h0, h1, cols in _column_blocks(pad_input(x, geom), geom, workspace_bytes, w.nbytes):
            yb = y[n0:n1, h0:h1].reshape(-1, k)
            if groups == 1:
                xp.matmul(cols, wmat, out=yb)
            else:
                yb[...] = _grouped_matmul(cols, wmat, groups, kh * kw)
    if b is not None:
        y += b
    return y, ConvCache(x, w, geom, groups, has_bias, algorithm, workspace_bytes)


def _dx_by_convolution(dy, w, geom: Geometry2D, back, direct_layer: bool, workspace_bytes: int):
    """Stride 1: ``dx`` is the convolution of ``dy`` with the rotated filter (C and K swapped),
    padded by ``back`` (:func:`_transposed_pads`) — one gather (im2col of ``dy``, or the direct
    loops for a direct layer) instead of kh·kw scatter-adds, and a wide GEMM."""
    xp = get_array_module(dy)
    c, k = w.shape[2], w.shape[3]  # the convolution of dy maps K channels to C
    algorithm = "direct" if direct_layer and direct_applicable(c, 1) and direct_pays(k, c) else "im2col"
    dx, _ = conv2d_forward(dy, xp.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2)), None, padding=back,
                           dilation=geom.dilation, algorithm=algorithm, workspace_bytes=workspace_bytes)
    return dx


def _dx_by_columns(dy, w, geom: Geometry2D, x_shape, workspace_bytes: int):
    """``dx`` of an ungrouped convolution on NumPy arrays: column gradients ``dy @ wᵀ`` block by
    block, added back with the compiled col2im (no im2col of ``x``: for the direct algorithm,
    whose weight gradient comes from its own kernel)."""
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


def dx_by_planes_pays(c: int, groups: int) -> bool:
    """An RGB or grey input (C ≤ 3), ungrouped: :func:`_dx_by_planes` (32×32×3 → 16, N = 64:
    6.5 ms → 3.6 against column gradients and col2im, whose runs are C = 3 values long;
    224×224×3 → 64, N = 1: 5.3 → 2.9)."""
    return c <= 3 and groups == 1


def _dx_by_planes(dy, w, geom: Geometry2D, x_shape, workspace_bytes: int):
    """``dx`` of an ungrouped convolution with few input channels: the column gradients tap-major,
    ``(kh·kw·C, n·Ho·Wo) = W @ dyᵀ`` for a chunk of images (within ``workspace_bytes``), added back
    one tap at a time as a shifted (strided) slice of channel planes ``(C, n, H, W)`` — runs of W
    values where col2im's are runs of C — then laid out NHWC."""
    xp = get_array_module(dy)
    n, h, wd, c = x_shape
    kh, kw, _, k = w.shape
    ho, wo = geom.out_hw
    sh, sw = geom.stride
    wmat = w.reshape(kh * kw * c, k)
    per_image = (kh * kw * ho * wo + h * wd) * c * dy.itemsize
    step = max(1, min(n, workspace_bytes // per_image))
    rows = [geom.height.tap_range(a) for a in range(kh)]
    cols = [geom.width.tap_range(b) for b in range(kw)]
    dx = xp.empty(x_shape, dtype=dy.dtype)
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        g = (wmat @ dy[n0:n1].reshape(-1, k).T).reshape(kh, kw, c, n1 - n0, ho, wo)
        planes = xp.zeros((c, n1 - n0, h, wd), dtype=dy.dtype)
        for a, (i0, i1, r0) in enumerate(rows):
            for b, (j0, j1, q0) in enumerate(cols):
                if i1 > i0 and j1 > j0:
                    planes[:, :, r0 : r0 + (i1 - i0 - 1) * sh + 1 : sh, q0 : q0 + (j1 - j0 - 1) * sw + 1 : sw] += \
                        g[a, b, :, :, i0:i1, j0:j1]
        dx[n0:n1] = planes.transpose(1, 2, 3, 0)
    return dx


def dx_by_columns_pays(c: int, k: int, *, numpy: bool = True) -> bool:
    """Stride 1, NumPy arrays, numba on: ``dx`` from column gradients (``dy @ wᵀ``, BLAS reads the
    transpose in place) and the compiled col2im instead of the convolution with the rotated
    filter — from C·K ≥ 128·256 on (C ≤ 3 goes to :func:`_dx_by_planes` first).

    At C·K ≥ 128·256 the rotated, transposed weight copy costs as much as
    the GEMM (3×3×512×512: 5.8 ms; 14×14×512 → 512, N = 1: dx 6.4 ms against 13.4), and the
    wide GEMM measured 1.1-1.6× faster at 128×256 to 512×512 (at 64×64 and 128×128 the
    convolution was as fast or faster).  ``numpy``: the arrays are NumPy arrays."""
    return c * k >= 128 * 256 and numpy and kernels.enabled()


def _transposed_pads(geom: Geometry2D, hw):
    """Pads that make a stride-1 convolution of ``dy`` with the rotated filter give ``dx``
    exactly (None when one would be negative: then col2im is used)::

        top' = F' - 1 - P_top,   bottom' = H - Ho + P_top   (F' the dilated extent)
    """
    out = []
    for ax, size in ((geom.height, hw[0]), (geom.width, hw[1])):
        before = ax.effective_kernel - 1 - ax.pad_before
        after = size - ax.out + ax.pad_before
        if before < 0 or after < 0:
            return None
        out.append((before, after))
    return tuple(out)


def _bias_grad(dy):
    """``Σ dy`` per output channel: a compiled single pass in float64 with numba (NumPy's
    reduction over the three leading axes took 1.7 ms on 224×224×64, the kernel 0.6), else
    NumPy's sum."""
    if kernels.usable(dy):
        from .kernels import norm as norm_kernels

        return norm_kernels.channel_sum(dy.reshape(-1, dy.shape[-1])).astype(dy.dtype)
    return dy.sum(axis=(0, 1, 2))


def conv2d_backward(dy, cache: ConvCache, *, need_dx=True):
    """Gradients ``(dx, dw, db)`` of a convolution; ``db`` is None when there was no bias.

    ``need_dx=False`` (the first layer of a net in training) skips the data gradient
    — for im2col the whole column-gradient GEMM and col2im — and returns ``dx = None``.
    """
    x, w, geom, groups = cache.x, cache.w, cache.geom, cache.groups
    xp = get_array_module(x)
    n, h, wd, c = x.shape
    kh, kw, _, k = w.shape
    ho, wo = geom.out_hw
    check_grad_shape(dy, (n, ho, wo, k), "conv2d_backward")
    check_same_dtype("conv2d_backward", x, dy=dy)  # every algorithm alike (the forward input's dtype)
    db = _bias_grad(dy) if cache.has_bias else None
    if cache.algorithm == "gemm1x1":
        x2 = x.reshape(n * h * wd, c)
        dy2 = dy.reshape(n * h * wd, k)
        dw = (x2.T @ dy2).reshape(w.shape)
        dx = (dy2 @ w.reshape(c, k).T).reshape(x.shape) if need_dx else None
        return dx, dw, db
    if cache.algorithm == "smallmap":
        dx = smallmap.dx(dy, w, geom, x.shape) if need_dx else None
        return dx, smallmap.dw(x, dy, geom, (kh, kw)), db
    if need_dx and dx_by_planes_pays(c, groups) and cache.algorithm in ("im2col", "direct"):
        _, dw, _ = conv2d_backward(dy, cache, need_dx=False)
        return _dx_by_planes(dy, w, geom, x.shape, cache.workspace_bytes), dw, db
    if cache.algorithm.startswith("winograd"):
        m = int(cache.algorithm[-1])
        dy = xp.ascontiguousarray(dy)
        dx = winograd_dx(dy, w, pads=geom.pads, m=m, in_hw=(h, wd), workspace_bytes=cache.workspace_bytes) \
            if need_dx else None
        dw = winograd_dw(x, dy, pads=geom.pads, m=m, workspace_bytes=cache.workspace_bytes)
        return dx, dw, db
    back = _transposed_pads(geom, (h, wd)) if groups == 1 and geom.stride == (1, 1) else None
    direct_layer = cache.algorithm == "direct"
    if direct_layer and direct.supports_weight_grad(k):
        dw = direct.weight_grad(x, dy, (kh, kw), geom.stride, geom.dilation, (geom.pads[0][0], geom.pads[1][0]))
        if not need_dx:
            return None, dw, db
        if back is None or dx_by_columns_pays(c, k):
            return _dx_by_columns(dy, w, geom, x.shape, cache.workspace_bytes), dw, db
        return _dx_by_convolution(dy, w, geom, back, direct_layer, cache.workspace_bytes), dw, db
    if back is not None and need_dx and not dx_by_columns_pays(c, k, numpy=kernels.usable(x, dy)):
        dx = _dx_by_convolution(dy, w, geom, back, direct_layer, cache.workspace_bytes)
        _, dw, _ = conv2d_backward(dy, cache, need_dx=False)
        return dx, dw, db
    positions = kh * kw
    wmat = w.reshape(positions * (c // groups), k)
    xpad = pad_input(x, geom)
    gather = need_dx and kernels.usable(x)  # compiled col2im adds straight into the unpadded dx
    dxpad = None
    if need_dx:
        dxpad = xp.zeros(x.shape if gather else xpad.shape, dtype=x.dtype)
    dw = None
    dy = xp.ascontiguousarray(dy)
    sh = geom.stride[0]
    dbuf = None
    for n0, n1, h0, h1, cols in _column_blocks(xpad, geom, cache.workspace_bytes, w.nbytes):
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
        return None, dw.reshape(w.shape), db
    dx = dxpad if gather else unpad(dxpad, geom, (h, wd))
    return xp.ascontiguousarray(dx), dw.reshape(w.shape), db
