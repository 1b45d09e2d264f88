"""The activation maps of one image, layer by layer, in one PNG of bounded size.

Layout (pixels, top to bottom): the input image with the caption (the prediction) beside it and a
note on what is shown; then one block per layer: a heading ``#5/68  name  H×W×C · 16 channels ·
values 0 … 3.2``, the channels as tiles in rows (channel 0 first) and a colour bar.

Tiles: an integer multiple of the map's size (crisp pixels) up to the target size, 64 px for maps
of 32 pixels and more, else 48 px (larger maps are shrunk to the target).

Size: the PNG is at most ``max_width_px`` × ``max_height_px``. When the blocks of all layers do
not fit, a subset of the layers evenly spaced through the net (the first and the last always
among them) is drawn and the note says so ("22 of 68 layers shown"); the tiles shrink, down to
16 px, before fewer than 12 layers would be shown. To see particular layers (e.g. the ReLU or block
outputs only), pass only their maps.

Colours: one scale per layer, never per channel, so a channel that barely responds looks faint
and a dead one black: maps with negative values use a diverging colormap symmetric around 0
(blue < 0 < red), non-negative maps (after ReLU) black (0) to yellow (the layer's maximum).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ._figure import DPI, new_figure, save

MARGIN, GAP = 14, 3  # px: figure margin; space between tiles
HEAD = 22  # px: a layer's heading line
BLOCK_GAP = 8  # px: space below a layer block
BAR = 44  # px: the colour bar beside a block with its tick labels
IMAGE_PX = 150  # px: the input image's height
MIN_LAYERS = 12  # shrink the tiles before showing fewer layers than this
TARGETS = (64, 48, 40, 32, 24, 16)  # px: tile sizes tried, largest first


def plot_activations(maps: dict[str, np.ndarray], path: str | os.PathLike, *, image=None, caption: str | None = None,
                     max_channels: int = 64, max_width_px: int = 2400, max_height_px: int = 2400) -> str:
    """Draw one sample's activation maps into one PNG at ``path``; returns the path.

    ``maps``: layer name → that layer's output for one sample, ``(H, W, C)``; entries of other
    rank (flattened and FC outputs) are skipped. ``image``: the input, ``(H, W, C)`` floats in
    [0, 1] (grey when C == 1), drawn at the top with ``caption`` (e.g. "7 (0.982), 1 (0.010)").
    At most ``max_channels`` channels per layer (the first ones; the heading then says "64 of 128
    channels"). The PNG is at most ``max_width_px`` × ``max_height_px`` pixels (each ≥ 400); when
    not every layer fits, an evenly spaced subset is drawn and the picture says so (see the
    module docstring).
    """
    fig = _figure_activations(maps, image=image, caption=caption, max_channels=max_channels,
                              max_width_px=max_width_px, max_height_px=max_height_px)
    return save(fig, path)


@dataclass
class _Block:
    """One layer's block: ``n`` channels as ``rows`` × ``cols`` tiles of ``tile`` px."""

    name: str
    index: int
    a: np.ndarray
    n: int
    tile: int
    cols: int
    rows: int

    @classmethod
    def plan(cls, name, index, a, *, max_channels, target, width_avail):
        side = max(a.shape[0], a.shape[1], 1)
        tile = side * (target // side) if side <= target else target
        n = min(a.shape[2], max_channels)
        cols_fit = max(1, (width_avail - BAR + GAP) // (tile + GAP))
        rows = max(1, math.ceil(n / cols_fit))
        return cls(name, index, a, n, tile, math.ceil(n / rows) if n else 1, rows)

    @property
    def width(self) -> int:
        return self.cols * (self.tile + GAP) - GAP + BAR

    @property
    def height(self) -> int:
        return HEAD + self.rows * (self.tile + GAP) + BLOCK_GAP

    def mosaic(self) -> np.ndarray:
        """The channels as one picture: tiles (nearest-neighbour, aspect kept) ``GAP`` px apart, row
        by row, NaN (drawn white) around them. One image per layer draws in milliseconds where an
        axes per channel took seconds."""
        h, w, _ = self.a.shape
        t = self.tile
        th, tw = (t, max(1, round(t * w / h))) if h >= w else (max(1, round(t * h / w)), t)
        up = self.a[(np.arange(th) * h) // th][:, (np.arange(tw) * w) // tw]
        out = np.full((self.rows * (t + GAP) - GAP, self.cols * (t + GAP) - GAP), np.nan)
        for k in range(self.n):
            r, q = divmod(k, self.cols)
            out[r * (t + GAP):r * (t + GAP) + th, q * (t + GAP):q * (t + GAP) + tw] = up[:, :, k]
        return out


def _choose(layers, *, max_channels, width_avail, height_avail, start) -> list[_Block]:
    """Blocks for the most layers (evenly spaced, up to all) that fit ``height_avail``, with the
    largest tiles that still show ``MIN_LAYERS`` of them."""
    best: list[_Block] = []
    for target in (t for t in TARGETS if t <= start):
        blocks = [_Block.plan(name, i, a, max_channels=max_channels, target=target, width_avail=width_avail)
                  for i, (name, a) in enumerate(layers)]
        heights = np.array([b.height for b in blocks])
        chosen: list[_Block] = []
        for n in range(len(blocks), 0, -1):
            idx = np.unique(np.round(np.linspace(0, len(blocks) - 1, n)).astype(int))
            if heights[idx].sum() <= height_avail:
                chosen = [blocks[i] for i in idx]
                break
        if len(chosen) > len(best):
            best = chosen
        if len(chosen) >= min(len(layers), MIN_LAYERS):
            break
    return best


class _Layout:
    """Place axes and text by pixel position from the top-left corner of a ``width`` × ``height`` figure."""

    def __init__(self, width: int, height: int):
        self.w, self.h = width, height
        self.fig = new_figure(width / DPI, height / DPI)

    def axes(self, x, y, w, h):
        ax = self.fig.add_axes((x / self.w, 1 - (y + h) / self.h, w / self.w, h / self.h))
        ax.set_axis_off()
        return ax

    def text(self, x, y, s, **kw):
        return self.fig.text(x / self.w, 1 - y / self.h, s, va="top", ha="left", **kw)


def _check(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"Argument `{name}` of plot_activations must be an integer of at least {low}; "
                          f"received {name}={value!r}.")


def _figure_activations(maps, *, image=None, caption=None, max_channels=64, max_width_px=2400, max_height_px=2400):
    _check("max_channels", max_channels, 1)
    _check("max_width_px", max_width_px, 400)
    _check("max_height_px", max_height_px, 400)
    layers = [(name, np.asarray(a, dtype=np.float64)) for name, a in maps.items() if np.ndim(a) == 3]
    total = len(layers)

    img = None if image is None else np.asarray(image, dtype=np.float64)
    if img is not None and img.ndim == 2:
        img = img[:, :, None]
    img_h = 0 if img is None else min(IMAGE_PX, max_height_px // 4)
    img_w = 0 if img is None else min(round(img_h * img.shape[1] / max(img.shape[0], 1)), 2 * img_h)
    top_h = MARGIN + max(img_h, 70) + 12

    side = max((max(a.shape[0], a.shape[1]) for _, a in layers), default=1)
    blocks = _choose(layers, max_channels=max_channels, width_avail=max_width_px - 2 * MARGIN,
                     height_avail=max_height_px - top_h - MARGIN, start=64 if side >= 32 else 48)
    width = min(max_width_px, max(2 * MARGIN + max((b.width for b in blocks), default=0), 720))
    height = min(max_height_px, top_h + sum(b.height for b in blocks) + MARGIN)
    lay = _Layout(width, height)

    x_text = MARGIN
    if img is not None:
        _draw_image(lay.axes(MARGIN, MARGIN, img_w, img_h), img)
        x_text = MARGIN + img_w + 16
    y = MARGIN
    if caption:
        lay.text(x_text, y, caption, fontsize=15, fontweight="bold")
        y += 30
    if total == 0:
        note = "no (H, W, C) activation maps to show"
    elif len(blocks) == total:
        note = f"all {total} layers with (H, W, C) maps (#n/{total}: the layer's position)"
    else:
        note = (f"{len(blocks)} of {total} layers with (H, W, C) maps shown, evenly spaced through the net "
                f"(#n/{total}: the layer's position); pass fewer maps to see others")
    lay.text(x_text, y, note, fontsize=9)
    lay.text(x_text, y + 18, "one colour scale per layer, not per channel: blue < 0 < red where the layer has "
             "negative values, else black = 0 to yellow = max", fontsize=8, color="0.35")
    lay.text(x_text, y + 32, "channels left to right, row by row, from channel 0", fontsize=8, color="0.35")

    renderer = lay.fig.canvas.get_renderer()
    y = top_h
    for b in blocks:
        y = _draw_block(lay, renderer, b, y, total)
    return lay.fig


def _draw_image(ax, img):
    if img.shape[2] == 3:
        ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
    else:
        ax.imshow(img.mean(axis=2), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_block(lay: _Layout, renderer, b: _Block, y: int, total: int) -> int:
    """Draw one layer's heading, tiles and colour bar from pixel row ``y``; returns the next row."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    c = b.a.shape[2]
    shown = b.a[:, :, :b.n]
    lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 0.0)
    if lo < 0:
        s = max(-lo, hi)
        norm, cmap = Normalize(-s, s), "RdBu_r"
    else:
        norm, cmap = Normalize(0.0, hi if hi > 0 else 1.0), "inferno"
    channels = f"{b.n} of {c} channels" if b.n < c else f"{c} channel{'s' if c != 1 else ''}"
    head = lay.text(MARGIN, y + 4, f"#{b.index + 1}/{total}  {b.name}", fontsize=9, fontweight="bold")
    lay.text(head.get_window_extent(renderer).x1 + 10, y + 4,
             f"{b.a.shape[0]}×{b.a.shape[1]}×{c} · {channels} · values {lo:.3g} … {hi:.3g}", fontsize=9)
    y += HEAD
    mosaic = b.mosaic()
    ax = lay.axes(MARGIN, y, mosaic.shape[1], mosaic.shape[0])
    ax.imshow(mosaic, cmap=colormaps[cmap].with_extremes(bad="white"), norm=norm, interpolation="nearest",
              aspect="auto")
    cax = lay.axes(MARGIN + mosaic.shape[1] + 5, y, 8, mosaic.shape[0])
    cax.set_axis_on()
    bar = lay.fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_ticks([norm.vmin, 0.0, norm.vmax] if lo < 0 else [norm.vmin, norm.vmax])
    bar.ax.tick_params(labelsize=6, length=2, pad=1)
    bar.ax.yaxis.set_major_formatter("{x:.2g}")
    return y + mosaic.shape[0] + GAP + BLOCK_GAP
