"""Activation maps made small enough for a page: at most ``max_channels`` channels per layer,
maps shrunk by an integer factor (the mean of each ``f×f`` block) until every layer fits the
byte budget, each channel quantised to uint8 between its own min and max, and a layer's channels
tiled into one greyscale PNG (an "atlas") carried as a ``data:`` URL.

A shown value is ``min + q/255·(max - min)``: within half a step of the block mean.
"""
from __future__ import annotations

import base64
import io
import math

import numpy as np

#: largest map side tried first (no shrinking), then these, largest first
SIDES = (None, 224, 112, 96, 64, 56, 48, 32, 28, 24, 16, 8)


def shrink_factor(h: int, w: int, side: int | None) -> int:
    """The integer factor that brings the larger of ``h, w`` to at most ``side``."""
    return 1 if side is None else max(1, math.ceil(max(h, w) / side))


def shrink(a: np.ndarray, f: int) -> np.ndarray:
    """``a (H, W, C)`` with each ``f×f`` block replaced by its mean (edges repeated to fill the last block)."""
    if f == 1:
        return a
    h, w, c = a.shape
    hh, ww = math.ceil(h / f) * f, math.ceil(w / f) * f
    a = np.pad(a, ((0, hh - h), (0, ww - w), (0, 0)), mode="edge")
    return a.reshape(hh // f, f, ww // f, f, c).mean(axis=(1, 3))


def quantize(a: np.ndarray):
    """``(q uint8, lo, hi)`` per channel of ``a (H, W, C)`` (a constant channel quantises to zeros)."""
    a = a.astype(np.float64)
    lo = a.min(axis=(0, 1))
    hi = a.max(axis=(0, 1))
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.clip(np.round((a - lo) / span * 255), 0, 255).astype(np.uint8)
    return q, lo, hi


def png_data_url(grey: np.ndarray) -> str:
    """A 2-D uint8 array as a ``data:image/png;base64,...`` URL (Pillow, best compression)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def atlas(q: np.ndarray) -> tuple[np.ndarray, int]:
    """The channels of ``q (h, w, n)`` tiled row by row into one image; returns it and the columns."""
    h, w, n = q.shape
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    out = np.zeros((rows * h, cols * w), dtype=np.uint8)
    for ch in range(n):
        r, col = divmod(ch, cols)
        out[r * h:(r + 1) * h, col * w:(col + 1) * w] = q[:, :, ch]
    return out, cols


def choose_side(shapes: list, *, max_channels: int, budget_bytes: int) -> int | None:
    """The largest map side from :data:`SIDES` at which the quantised maps of ``shapes`` (H, W, C)
    take at most ``budget_bytes`` as raw uint8 (the smallest side when none does)."""
    for side in SIDES:
        total = 0
        for h, w, c in shapes:
            f = shrink_factor(h, w, side)
            total += math.ceil(h / f) * math.ceil(w / f) * min(c, max_channels)
        if total <= budget_bytes:
            return side
    return SIDES[-1]


def encode_maps(a: np.ndarray, *, side: int | None, max_channels: int) -> dict:
    """One layer's output ``(H, W, C)`` as the page draws it: atlas PNG, tile size, factor, per-channel range."""
    h, w, c = a.shape
    n = min(c, max_channels)
    f = shrink_factor(h, w, side)
    small = shrink(np.asarray(a[:, :, :n], dtype=np.float64), f)
    q, lo, hi = quantize(small)
    image, cols = atlas(q)
    return {"png": png_data_url(image), "h": int(small.shape[0]), "w": int(small.shape[1]), "cols": cols,
            "shown": n, "channels": c, "factor": f, "min": lo.tolist(), "max": hi.tolist()}


def encode_vector(v: np.ndarray) -> dict:
    """A vector (FC output, scores) as one quantised square-ish image, one pixel per value."""
    v = np.asarray(v, dtype=np.float64).ravel()
    n = v.size
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    q, lo, hi = quantize(v.reshape(1, 1, n).transpose(0, 2, 1).reshape(n, 1, 1))
    grid = np.zeros(rows * cols, dtype=np.uint8)
    grid[:n] = q.ravel()
    return {"png": png_data_url(grid.reshape(rows, cols)), "length": n, "cols": cols, "rows": rows,
            "min": float(lo[0]), "max": float(hi[0])}
