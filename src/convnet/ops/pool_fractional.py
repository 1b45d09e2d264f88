"""Fractional max pooling (Graham 2014), one of the notes' "recent developments".

Instead of a fixed 2×2/2 grid, the pooling regions shrink the map by a
non-integer factor ``alpha = (H - F) / (Ho - 1)`` (between 1 and 2 for the
usual use), and the region starts are drawn at random for each forward pass::

    start[i] = floor((i + u) · alpha) - floor(u · alpha)   for i < Ho - 1
    start[Ho - 1] = H - F

with ``u`` in ``[0, 1)`` drawn per image and per channel (separately for height
and width), and each region ``F`` wide (``F = 2`` by default: overlapping
"pseudo-random" regions).  This is the sequence PyTorch's
``FractionalMaxPool2d`` uses, so a shared ``u`` gives identical results.

``samples`` has shape ``(N, C, 2)``: ``[..., 0]`` for height, ``[..., 1]`` for width.
The maximum's position is kept as a flat index for backward, which scatters
the gradient with one ``bincount`` (no ``np.add.at``).  Ties: the first maximum
in row-major window order wins.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .checks import check_grad_shape, check_nhwc
from .geometry import as_pair


def fractional_starts(u, size: int, out: int, pool: int):
    """Region starts ``(..., out)`` for samples ``u (...)`` along one axis."""
    xp = get_array_module(u)
    if out == 1:
        return xp.zeros(u.shape + (1,), dtype=np.int64) + (size - pool)
    alpha = (size - pool) / (out - 1)
    i = xp.arange(out - 1, dtype=u.dtype)
    starts = xp.floor((i + u[..., None]) * alpha).astype(np.int64) - xp.floor(u * alpha).astype(np.int64)[..., None]
    last = xp.full(u.shape + (1,), size - pool, dtype=np.int64)
    return xp.concatenate([starts, last], axis=-1)


def fractional_output_size(input_hw, *, output_size=None, ratio=None, pool_size=2, layer="fractional_max_pool2d"):
    """Resolve ``output_size`` or ``ratio`` (Ho = floor(H · ratio)) to ``(Ho, Wo)`` and check it fits."""
    fh, fw = as_pair(pool_size, "pool_size")
    h, w = input_hw
    if (output_size is None) == (ratio is None):
        raise ConfigError(f"{layer}: give exactly one of `output_size` or `ratio`; received output_size={output_size!r}, ratio={ratio!r}.")
    if output_size is not None:
        ho, wo = as_pair(output_size, "output_size")
    else:
        rh, rw = ratio if isinstance(ratio, (tuple, list)) else (ratio, ratio)
        if not (0 < rh < 1 and 0 < rw < 1):
            raise ConfigError(f"{layer}: `ratio` must lie in (0, 1); received {ratio!r}.")
        ho, wo = int(h * rh), int(w * rw)
    for axis, size, out, f in (("height", h, ho, fh), ("width", w, wo, fw)):
        if out < 1 or out + f - 1 > size:
            raise ShapeError(
                f"{layer}: output {axis} {out} with pool size {f} needs an input {axis} between {out + f - 1} and more; "
                f"received input {axis} {size} (expected {axis} >= output + F - 1 and output >= 1)."
            )
    return (ho, wo)


@dataclass
class FractionalCache:
    x_shape: tuple
    argmax: object  # flat index into x of each output's maximum


def fractional_max_pool2d_forward(x, *, samples, output_size, pool_size=2, layer="fractional_max_pool2d"):
    """Returns ``(y, cache)``; ``samples (N, C, 2)`` in ``[0, 1)`` place the regions."""
    check_nhwc(x, layer)
    xp = get_array_module(x)
    n, h, w, c = x.shape
    ho, wo = fractional_output_size((h, w), output_size=output_size, pool_size=pool_size, layer=layer)
    fh, fw = as_pair(pool_size, "pool_size")
    samples = xp.asarray(samples, dtype=np.float64)
    if samples.shape != (n, c, 2):
        raise ShapeError(f"{layer}: `samples` must have shape ({n}, {c}, 2); received {tuple(samples.shape)}.")
    rows = fractional_starts(samples[..., 0], h, ho, fh)  # (N, C, Ho)
    cols = fractional_starts(samples[..., 1], w, wo, fw)  # (N, C, Wo)
    n_i = xp.arange(n)[:, None, None, None]
    c_i = xp.arange(c)[None, :, None, None]
    best = best_idx = None
    for a in range(fh):
        r = (rows + a)[:, :, :, None]
        for b in range(fw):
            q = (cols + b)[:, :, None, :]
            flat = ((n_i * h + r) * w + q) * c + c_i  # (N, C, Ho, Wo)
            v = x.reshape(-1)[flat]
            if best is None:
                best, best_idx = v, flat
                continue
            better = (v > best) | (xp.isnan(v) & ~xp.isnan(best))
            best = xp.where(better, v, best)
            best_idx = xp.where(better, flat, best_idx)
    y = xp.ascontiguousarray(best.transpose(0, 2, 3, 1))
    return y, FractionalCache(tuple(x.shape), xp.ascontiguousarray(best_idx.transpose(0, 2, 3, 1)))


def fractional_max_pool2d_backward(dy, cache: FractionalCache):
    xp = get_array_module(dy)
    check_grad_shape(dy, cache.argmax.shape, "fractional_max_pool2d_backward")
    size = int(np.prod(cache.x_shape))
    dx = xp.bincount(cache.argmax.reshape(-1), weights=dy.reshape(-1), minlength=size)
    return dx.astype(dy.dtype, copy=False).reshape(cache.x_shape)
