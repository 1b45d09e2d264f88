"""PNG pictures of a run, written with matplotlib's non-interactive Agg backend.

* :func:`plot_curves` — loss and accuracy per epoch (train and validation/test).
* :func:`plot_filters` — the first CONV layer's filters as small images (the notes'
  "visualizing the weights": smooth, structured filters are a sign of a healthy net).
* :func:`plot_activations` — the activation maps of one image at a few layers.
"""
from __future__ import annotations

import math
import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict], path: str | os.PathLike, *, title: str = "training") -> str:
    """``history`` is a list of per-epoch dicts with ``epoch``, ``train_loss``,
    ``train_accuracy`` and optionally ``val_loss``/``val_accuracy``."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        if any(key in h for h in history):
            ax_l.plot(epochs, [h.get(key, np.nan) for h in history], marker="o", label=label)
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
        if any(key in h for h in history):
            ax_a.plot(epochs, [h.get(key, np.nan) for h in history], marker="o", label=label)
    ax_l.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy", ylim=(0, 1.01))
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def plot_filters(w, path: str | os.PathLike, *, title: str = "first CONV layer filters") -> str:
    """``w`` is HWIO ``(kh, kw, C, K)``: one tile per filter, RGB when C == 3, else the channel mean in grey."""
    plt = _pyplot()
    w = np.asarray(w, dtype=np.float64)
    k = w.shape[3]
    rows, cols = _grid(k)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.2 + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= k:
            continue
        f = w[:, :, :, i]
        f = (f - f.min()) / (np.ptp(f) + 1e-12)
        if f.shape[2] == 3:
            ax.imshow(f, interpolation="nearest")
        else:
            ax.imshow(f.mean(axis=2), cmap="gray", interpolation="nearest")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def plot_activations(maps: dict[str, np.ndarray], path: str | os.PathLike, *, max_channels: int = 16) -> str:
    """``maps``: layer name → one sample's activation ``(H, W, C)``; shows up to ``max_channels`` per layer."""
    plt = _pyplot()
    names = [n for n, a in maps.items() if np.ndim(a) == 3]
    fig, axes = plt.subplots(len(names), max_channels, figsize=(max_channels * 0.9, len(names) * 1.1 + 0.3), squeeze=False)
    for r, name in enumerate(names):
        a = np.asarray(maps[name])
        for c in range(max_channels):
            ax = axes[r, c]
            ax.axis("off")
            if c < a.shape[2]:
                ax.imshow(a[:, :, c], cmap="viridis", interpolation="nearest")
        axes[r, 0].set_title(name, fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
