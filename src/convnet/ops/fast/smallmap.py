"""Convolution of small maps: one GEMM per output pixel and kernel row, over the taps inside the image.

On a 2×2 map a 3×3, pad-1 window reads 4 of its 9 taps from the image and 5 from the
zero padding; im2col multiplies all nine (and so does PyTorch's direct convolution).
Here each output pixel ``(i, j)`` is a sum over the kernel rows ``a`` whose input row
``r = i·sh - pt + a·dh`` is inside the image, of one GEMM over that row's run of
columns inside the image (contiguous when ``dw = 1``; one tap a run otherwise)::

    y[:, i, j, :] = Σ_a  x[:, r, q0 : q0 + nb, :].reshape(N, nb·C)  @  w[a, b0 : b0 + nb].reshape(nb·C, K)

Both operands are views (no im2col copy, no padded copy): the batch is the GEMM's rows.
Only padding taps are skipped, so it multiplies ``N · (taps inside) · C · K`` — 4/9 of
im2col's count on a 2×2 map, 1/9 on 1×1; it pays where that fraction is small and the
batch gives the GEMMs rows (:func:`pays`).

Backward over the same runs: ``dx[:, r, q0 : q0 + nb] += dy[:, i, j] @ w[a, b0 : b0 + nb]ᵀ``;
``dw[a, b] = X_abᵀ @ dY_ab`` with the inputs and output gradients of every pixel that uses
tap ``(a, b)`` stacked (one GEMM per tap, written straight into ``dw``).
"""
from __future__ import annotations

from functools import lru_cache

from ...backend import get_array_module
from ..geometry import AxisGeometry, Geometry2D

#: used when at most this fraction of the window's taps falls inside the image, on average: a 3×3
#: pad-1 window has 44 % inside on a 2×2 map and 60.5 % on 3×3 (both won), 69 % on 4×4, where
#: the 40 thin GEMMs lost to F(2,3) (docs/tuning.md)
MAX_INSIDE_FRACTION = 0.62
#: ... the batch has at least this many samples (the GEMMs' rows) ...
MIN_BATCH = 8
#: ... and one image needs at most this many GEMMs (the wins had 4-21; a 4×4 map's 40 lost)
MAX_GEMMS = 24


def _axis_runs(ax: AxisGeometry):
    """Per output position ``o``: the runs ``(t0, nt, s0)`` of taps ``t0 .. t0 + nt - 1`` whose input
    positions ``s0, s0 + 1, ...`` (one tap a run when dilated) are inside ``0 .. size - 1``."""
    out = []
    for o in range(ax.out):
        inside = [(t, o * ax.stride - ax.pad_before + t * ax.dilation) for t in range(ax.kernel)]
        inside = [(t, s) for t, s in inside if 0 <= s < ax.size]
        runs = []
        for t, s in inside:
            if runs and ax.dilation == 1 and runs[-1][0] + runs[-1][1] == t:
                runs[-1][1] += 1
            else:
                runs.append([t, 1, s])
        out.append(tuple(tuple(r) for r in runs))
    return tuple(out)


@lru_cache(maxsize=256)
def runs(geom: Geometry2D):
    """``[(p, i, j, a, r, b0, nb, q0), ...]``: for output pixel ``p = i·Wo + j``, kernel row ``a`` (input
    row ``r``) and a run of ``nb`` kernel columns from ``b0`` (input columns from ``q0``) inside the image."""
    rows, cols = _axis_runs(geom.height), _axis_runs(geom.width)
    wo = geom.width.out
    out = []
    for i, row_runs in enumerate(rows):
        for j, col_runs in enumerate(cols):
            for a0, na, r0 in row_runs:
                for da in range(na):
                    for b0, nb, q0 in col_runs:
                        out.append((i * wo + j, i, j, a0 + da, r0 + da, b0, nb, q0))
    return tuple(out)


def _axis_inside(ax: AxisGeometry) -> int:
    """Taps of one axis inside the image, summed over the output positions."""
    return sum(o1 - o0 for o0, o1, _ in map(ax.tap_range, range(ax.kernel)))


@lru_cache(maxsize=1024)
def inside_taps(geom: Geometry2D) -> int:
    """Taps inside the image, summed over the output pixels (one image): the product of the two
    axes' counts (a tap is inside when its row and its column are), without listing the runs —
    :func:`pays` asks this of every convolution."""
    return _axis_inside(geom.height) * _axis_inside(geom.width)


@lru_cache(maxsize=1024)
def gemms(geom: Geometry2D) -> int:
    """GEMMs per image (``len(runs(geom))``): kernel rows inside the image, summed over the output
    rows, times the runs of columns inside it, summed over the output columns."""
    rows = _axis_inside(geom.height)
    cols = sum(len(r) for r in _axis_runs(geom.width))
    return rows * cols


def inside_fraction(geom: Geometry2D) -> float:
    ho, wo = geom.out_hw
    kh, kw = geom.kernel
    return inside_taps(geom) / (ho * wo * kh * kw)


def pays(geom: Geometry2D, n: int, groups: int) -> bool:
    """Ungrouped, a batch of at least :data:`MIN_BATCH` (with one image the weight gradient's GEMMs
    sum over 1-4 rows, and im2col is faster), at most :data:`MAX_GEMMS`
    GEMMs an image, and at most :data:`MAX_INSIDE_FRACTION` of the taps inside the image: 1×1 to
    3×3 maps under a 3×3 pad-1 window, a 5×5 pad-2 window on 1×1 and 2×2 maps."""
    return (groups == 1 and n >= MIN_BATCH and gemms(geom) <= MAX_GEMMS
            and inside_fraction(geom) <= MAX_INSIDE_FRACTION)


def multiplies(n: int, geom: Geometry2D, c: int, k: int) -> int:
    return n * inside_taps(geom) * c * k


def workspace(n: int, geom: Geometry2D, c: int, k: int, itemsize: int) -> int:
    """Bytes of the forward's temporaries: the pixel-major output ``(Ho·Wo, N, K)`` and one GEMM's product."""
    ho, wo = geom.out_hw
    return (ho * wo + 1) * n * k * itemsize


def conv(x, w, geom: Geometry2D, bias=None):
    """``(N, Ho, Wo, K)`` of NHWC ``x`` by HWIO ``w`` (ungrouped), ``bias`` (K,) added."""
    xp = get_array_module(x)
    n, _, _, c = x.shape
    k = w.shape[3]
    ho, wo = geom.out_hw
    y = xp.empty((ho * wo, n, k), dtype=x.dtype)
    tmp = xp.empty((n, k), dtype=x.dtype)
    done = set()
    for p, _, _, a, r, b0, nb, q0 in runs(geom):
        xs = x[:, r, q0 : q0 + nb].reshape(n, nb * c)
        ws = w[a, b0 : b0 + nb].reshape(nb * c, k)
        if p in done:
            xp.matmul(xs, ws, out=tmp)
            y[p] += tmp
        else:
            xp.matmul(xs, ws, out=y[p])
            done.add(p)
    for p in range(ho * wo):  # a pixel whose window lies wholly in the padding
        if p not in done:
            y[p] = 0
    if bias is not None:
        y += bias
    return xp.ascontiguousarray(y.reshape(ho, wo, n, k).transpose(2, 0, 1, 3))


def dx(dy, w, geom: Geometry2D, x_shape):
    """Input gradient ``(N, H, W, C)``: each run's ``dy[:, i, j] @ wᵀ`` added to the inputs it read."""
    xp = get_array_module(dy)
    n, _, _, c = x_shape
    k = w.shape[3]
    out = xp.zeros(x_shape, dtype=dy.dtype)
    for _, i, j, a, r, b0, nb, q0 in runs(geom):
        out[:, r, q0 : q0 + nb] += (dy[:, i, j] @ w[a, b0 : b0 + nb].reshape(nb * c, k).T).reshape(n, nb, c)
    return out


def dw(x, dy, geom: Geometry2D, kernel):
    """Weight gradient ``(kh, kw, C, K)``: per tap, the inputs and output gradients of every pixel that
    uses it, stacked, in one GEMM (taps no pixel reads inside the image get zeros)."""
    xp = get_array_module(x)
    n, _, _, c = x.shape
    k = dy.shape[3]
    users = {}
    for _, i, j, a, r, b0, nb, q0 in runs(geom):
        for t in range(nb):
            users.setdefault((a, b0 + t), []).append((i, j, r, q0 + t))
    out = xp.zeros((*kernel, c, k), dtype=x.dtype)
    for (a, b), pix in users.items():
        xs = xp.concatenate([x[:, r, q] for _, _, r, q in pix]) if len(pix) > 1 else x[:, pix[0][2], pix[0][3]]
        gs = xp.concatenate([dy[:, i, j] for i, j, _, _ in pix]) if len(pix) > 1 else dy[:, pix[0][0], pix[0][1]]
        xp.matmul(xs.T, gs, out=out[a, b])
    return out
