"""A class-score heatmap over an image, from a dense (sliding-window) score map."""
from __future__ import annotations

import numpy as np

from .plots import _pyplot


def plot_score_heatmap(image, score_map, *, crop_shape, step, path, title="score map") -> str:
    """Draw ``image (H, W, C)`` with ``score_map (h, w)`` over it.

    Cell ``(i, j)`` scores the window whose top-left corner is ``(i·step_h, j·step_w)``;
    it is drawn over the centre of that window, ``step`` pixels wide.
    """
    plt = _pyplot()
    image = np.asarray(image, dtype=np.float64)
    h, w = crop_shape
    rows, cols = score_map.shape
    top, left = h / 2 - step[0] / 2, w / 2 - step[1] / 2
    extent = (left, left + cols * step[1], top + rows * step[0], top)
    fig, ax = plt.subplots(figsize=(6, 6 * image.shape[0] / max(image.shape[1], 1) + 0.5))
    shown = image[..., 0] if image.shape[2] == 1 else np.clip(image, 0, 1)
    ax.imshow(shown, cmap="gray" if image.shape[2] == 1 else None, interpolation="nearest")
    im = ax.imshow(score_map, cmap="jet", alpha=0.45, extent=extent, interpolation="bilinear", vmin=0, vmax=1)
    ax.set_xlim(0, image.shape[1])
    ax.set_ylim(image.shape[0], 0)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
