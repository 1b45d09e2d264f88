"""Class-probability heatmaps over an image, from a dense (sliding-window) score map.

Cell ``(i, j)`` of a map scores the window whose top-left corner is ``(i·step_h, j·step_w)``; it
is drawn over the centre of that window, ``step`` pixels wide, on the image in grey (so that the
colours are the map's). All panels share one 0-1 colour bar.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..errors import ShapeError
from ._figure import new_figure, save

OVERLAY_CMAP, OVERLAY_ALPHA = "turbo", 0.5
MAX_COLS = 3


def plot_score_heatmaps(image, score_maps: dict[str, np.ndarray], *, crop_shape, step, path: str | os.PathLike,
                        title: str = "class probability per window") -> str:
    """One panel per class: ``score_maps`` is an ordered dict class name → ``(h, w)`` probability map
    (e.g. the top classes, or the one chosen with ``--class``), drawn over ``image (H, W, C)``.

    Each panel is titled with the class name and the mean of its map over the windows; ``title``
    heads the figure. Up to 3 panels per row.
    """
    return save(_figure_score_heatmaps(image, score_maps, crop_shape=crop_shape, step=step, title=title), path)


def plot_score_heatmap(image, score_map, *, crop_shape, step, path: str | os.PathLike, title: str = "score map") -> str:
    """Draw ``image (H, W, C)`` with one ``score_map (h, w)`` over it; ``title`` heads the panel,
    followed by the map's mean. See :func:`plot_score_heatmaps` for several classes."""
    fig = _figure_score_heatmaps(image, {title: score_map}, crop_shape=crop_shape, step=step, title=None)
    return save(fig, path)


def _figure_score_heatmaps(image, score_maps, *, crop_shape, step, title):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ShapeError(f"Argument `image` must be one image (H, W, C); received shape {image.shape}.")
    maps = {str(k): np.asarray(v, dtype=np.float64) for k, v in score_maps.items()}
    if not maps:
        raise ShapeError("Argument `score_maps` must hold at least one class's map; received an empty dict.")
    for name, m in maps.items():
        if m.ndim != 2:
            raise ShapeError(f"The score map of {name!r} must be (h, w); received shape {m.shape}.")
    grey = _grey(image)

    n = len(maps)
    cols = min(n, MAX_COLS)
    rows = math.ceil(n / cols)
    panel_w = 4.0 if cols > 1 else 5.0
    panel_h = min(max(panel_w * image.shape[0] / max(image.shape[1], 1), 1.5), 7.0)
    fig = new_figure(cols * panel_w + 1.0, rows * (panel_h + 0.4) + (0.45 if title else 0.1))
    fig.set_layout_engine("constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    h, w = crop_shape
    top, left = h / 2 - step[0] / 2, w / 2 - step[1] / 2
    norm = Normalize(0.0, 1.0)
    for k, (name, m) in enumerate(maps.items()):
        ax = axes[k // cols, k % cols]
        ax.imshow(grey, cmap="gray", interpolation="nearest", extent=(0, image.shape[1], image.shape[0], 0))
        extent = (left, left + m.shape[1] * step[1], top + m.shape[0] * step[0], top)
        ax.imshow(m, cmap=OVERLAY_CMAP, norm=norm, alpha=OVERLAY_ALPHA, extent=extent, interpolation="nearest")
        ax.set_xlim(0, image.shape[1])
        ax.set_ylim(image.shape[0], 0)
        ax.set_xticks([])
        ax.set_yticks([])
        mean = f"mean P {float(m.mean()):.3f}"
        ax.set_title(f"{name} — {mean}" if title else f"{name} ({mean})", fontsize=10)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=OVERLAY_CMAP), ax=axes, shrink=0.9 * panel_h / (panel_h + 0.4),
                       aspect=25)
    bar.set_label("probability of the class in the window", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def _grey(image: np.ndarray) -> np.ndarray:
    """The image's luminance (RGB: ITU-R 601 weights; other channel counts: the mean)."""
    if image.shape[2] == 3:
        return image @ np.array([0.299, 0.587, 0.114])
    return image.mean(axis=2)
