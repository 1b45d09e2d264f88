"""PNG pictures of a run, drawn on matplotlib Figures with the Agg canvas (no pyplot state).

* :func:`plot_curves` — loss and accuracy per epoch (train and validation), the best epoch marked.
* :func:`plot_filters` — the first CONV layer's filters as small images on one shared scale (the
  notes' "visualizing the weights": smooth, structured filters are a sign of a healthy net).
* :func:`plot_activations` (in ``activations.py``, re-exported here) — one image's activation maps.

Each ``plot_*`` writes a file and returns its path; the ``_figure_*`` builders behind them return
the Figure, so tests can read the texts and scales that the PNG shows.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import ConfigError, ShapeError
from ._figure import grid, new_figure, save
from .activations import plot_activations  # noqa: F401  (its old home; ``convnet.viz`` exports it)

TRAIN_COLOUR, VAL_COLOUR, BEST_COLOUR = "tab:blue", "tab:orange", "tab:red"


# ---------------------------------------------------------------------------------------------- curves


def plot_curves(history: list[dict], path: str | os.PathLike, *, title: str = "training",
                best_epoch: int | None = None) -> str:
    """Loss and accuracy per epoch, written to ``path`` (PNG, 1100 × 420 px; 1500 × 420 with a zoom panel).

    ``history`` is a list of per-epoch dicts with ``epoch``, ``train_loss``, ``train_accuracy`` and
    optionally ``val_loss``/``val_accuracy`` (a column that no row has is not drawn).
    ``best_epoch``, when it is one of the history's epochs, is marked on every panel by a dashed
    line, and on the accuracy panels by a star on the validation point, labelled in the legend
    and the title "best val acc 0.9876 at epoch 7"; any other value (the trainer's −1: no validation) is ignored.
    The accuracy axis spans the plotted values plus a margin (so 0.97-1.0 is not a flat line at
    the top of 0-1); when the first epochs stretch it (the last two thirds of the epochs span under
    a quarter of the range), a third panel zooms on those later epochs. The loss axis is
    logarithmic when the loss varies by more than 10×.
    """
    return save(_figure_curves(history, title=title, best_epoch=best_epoch), path)


def _figure_curves(history, *, title="training", best_epoch=None):
    from matplotlib.ticker import MaxNLocator

    rows = list(history)
    if not rows:
        raise ConfigError("Argument `history` of plot_curves must hold at least one epoch; received an empty list.")
    epochs = np.array([float(r.get("epoch", i + 1)) for i, r in enumerate(rows)])
    series = {"loss": {}, "accuracy": {}}  # what → prefix → values per epoch (NaN where a row lacks it)
    for what in series:
        for prefix in ("train", "val"):
            ys = np.array([float(r.get(f"{prefix}_{what}", np.nan)) for r in rows])
            if np.isfinite(ys).any():
                series[what][prefix] = ys
    zoom_from = _zoom_start(series["accuracy"])

    fig = new_figure(15 if zoom_from else 11, 4.2)
    axes = list(fig.subplots(1, 3 if zoom_from else 2))
    ax_l, ax_a = axes[0], axes[1]
    acc_views = [(ax_a, slice(None))] + ([(axes[2], slice(zoom_from, None))] if zoom_from else [])
    marker_size = 4 if len(rows) <= 30 else 0
    style = {"train": ("train", TRAIN_COLOUR), "val": ("validation", VAL_COLOUR)}
    for ax, what, part in [(ax_l, "loss", slice(None))] + [(ax, "accuracy", part) for ax, part in acc_views]:
        for prefix, ys in series[what].items():
            ax.plot(epochs[part], ys[part], marker="o", ms=marker_size, color=style[prefix][1], label=style[prefix][0])

    losses = _finite(series["loss"].values())
    log_loss = losses.size > 1 and losses.min() > 0 and losses.max() / losses.min() > 10
    if log_loss:
        ax_l.set_yscale("log")
    ax_l.set(xlabel="epoch", ylabel="loss (log scale)" if log_loss else "loss", title="loss")
    for ax, part in acc_views:
        values = _finite(v[part] for v in series["accuracy"].values())
        ax.set(xlabel="epoch", ylabel="accuracy", ylim=_accuracy_limits(values))
    ax_a.set_title("accuracy")
    if zoom_from:
        axes[2].set_title(f"accuracy from epoch {epochs[zoom_from]:g} on (zoomed)")

    best_note = _mark_best(axes, acc_views, epochs, series["accuracy"].get("val"), best_epoch)

    for ax, part in [(ax_l, slice(None))] + acc_views:
        shown = epochs[part]
        pad = max(0.5, 0.03 * (shown.max() - shown.min()))
        ax.set_xlim(shown.min() - pad, shown.max() + pad)
        if shown.max() - shown.min() < 3:
            ax.set_xticks(np.unique(shown))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=9)
    heading = f"{title}: {len(rows)} epoch{'s' if len(rows) != 1 else ''}"
    fig.suptitle(heading + (f" — {best_note}" if best_note else ""), fontsize=12)
    fig.tight_layout()
    return fig


def _mark_best(axes, acc_views, epochs, val, best_epoch) -> str | None:
    """A dashed line at ``best_epoch`` on every panel and a star on its validation accuracy, whose
    legend entry is the note "best val acc … at epoch …"; returns the note (also in the title)."""
    if best_epoch is None or not np.any(epochs == best_epoch):
        return None
    i = int(np.flatnonzero(epochs == best_epoch)[0])
    for ax in axes:
        ax.axvline(best_epoch, color=BEST_COLOUR, ls="--", lw=1, alpha=0.7,
                   label=f"best epoch ({best_epoch:g})" if ax is axes[0] else None)
    if val is None or not np.isfinite(val[i]):
        return f"best epoch {best_epoch:g}"
    note = f"best val acc {val[i]:.4f} at epoch {best_epoch:g}"
    for ax, part in acc_views:
        if i in range(len(epochs))[part]:  # the star's legend entry is the note: the legend avoids the curves
            ax.plot([best_epoch], [val[i]], marker="*", ms=16, color=BEST_COLOUR, mec="white", zorder=5, ls="none",
                    label=note)
    return note


def _finite(arrays) -> np.ndarray:
    values = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in arrays] or [np.zeros(0)])
    return values[np.isfinite(values)]


def _zoom_start(accuracy: dict[str, np.ndarray]) -> int | None:
    """The epoch index from which a zoomed accuracy panel is drawn: the last two thirds of the
    epochs, when their accuracies span under a quarter of the whole range (the first epochs
    stretch the axis and flatten the rest); None when the full panel shows them well enough."""
    n = len(next(iter(accuracy.values()), []))
    if n < 4:
        return None
    start = n // 3
    everything, late = _finite(accuracy.values()), _finite(v[start:] for v in accuracy.values())
    if late.size < 2 or np.ptp(everything) == 0:
        return None
    return start if np.ptp(late) < 0.25 * np.ptp(everything) else None


def _accuracy_limits(values: np.ndarray) -> tuple[float, float]:
    """The plotted accuracies plus a margin (10 % of their range, at least 0.005), within [0, 1]
    except for a sliver above 1.0 so that points at 1.0 are not cut in half."""
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    margin = max(0.1 * (hi - lo), 0.005)
    top = hi + margin if hi + margin <= 1.0 else max(hi, 1.0) + margin / 4
    return max(lo - margin, 0.0) if lo >= 0 else lo - margin, top


# --------------------------------------------------------------------------------------------- filters


def plot_filters(w, path: str | os.PathLike, *, title: str = "first CONV layer filters",
                 max_filters: int = 64) -> str:
    """The filters of ``w`` (HWIO ``(kh, kw, C, K)``) as tiles, written to ``path`` (PNG).

    Every tile uses ONE scale, symmetric around 0: ``s = max|w|`` over all K filters, so a filter
    that looks faint has small weights (each filter stretched on its own would hide that).

    * ``C == 3``: the tile is RGB, each channel mapped by the same affine ``0.5 + 0.5·w/s``
      (weight 0 is mid-grey, −s black, +s full intensity). The grey colour bar shows this mapping
      for one channel; it is the same for R, G and B (not three separate scales).
    * otherwise: the weights of the one input channel (C == 1) or their mean over the C input
      channels, in a diverging colormap (blue < 0 < red) with a colour bar of the weight values.

    Each tile is labelled with its filter index; at most ``max_filters`` filters (the first ones)
    are drawn, and the title then says "first 64 of K shown".
    """
    return save(_figure_filters(w, title=title, max_filters=max_filters), path)


def _figure_filters(w, *, title="first CONV layer filters", max_filters=64):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4:
        raise ShapeError(f"Argument `w` of plot_filters must be HWIO weights (kh, kw, C, K); received shape {w.shape}.")
    if isinstance(max_filters, bool) or not isinstance(max_filters, int) or max_filters < 1:
        raise ConfigError(f"Argument `max_filters` must be a positive integer; received max_filters={max_filters!r}.")
    kh, kw, c, k = w.shape
    n = min(k, max_filters)
    s = float(np.abs(w).max()) if w.size else 0.0
    s = s if s > 0 else 1.0
    rgb = c == 3
    norm = Normalize(vmin=-s, vmax=s)
    cmap = "gray" if rgb else "RdBu_r"

    rows, cols = grid(n)
    tile = 0.8 if max(kh, kw) <= 7 else 1.0
    fig = new_figure(cols * tile + 1.5, rows * (tile + 0.15) + 1.0)
    gs = fig.add_gridspec(rows, cols + 1, width_ratios=[1] * cols + [0.35], left=0.02, right=0.88,
                          top=1 - 0.85 / (rows * (tile + 0.15) + 1.0), bottom=0.02, wspace=0.12, hspace=0.3)
    for i in range(rows * cols):
        ax = fig.add_subplot(gs[i // cols, i % cols])
        ax.set_axis_off()
        if i >= n:
            continue
        f = w[:, :, :, i]
        if rgb:
            ax.imshow(np.clip(0.5 + 0.5 * f / s, 0.0, 1.0), interpolation="nearest")
        else:
            ax.imshow(f[:, :, 0] if c == 1 else f.mean(axis=2), cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(str(i), fontsize=7, pad=2)
    cax = fig.add_subplot(gs[:, cols])
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    if rgb:
        bar.set_label("weight, each of R, G, B (0 = mid-grey)", fontsize=8)
    else:
        bar.set_label("weight" if c == 1 else f"mean weight over the {c} input channels", fontsize=8)
    bar.ax.tick_params(labelsize=7)

    detail = (f"{kh}×{kw}×{c} each" + (f", first {n} of {k} shown" if n < k else "")
              + f"; one scale for all: ±{s:.3g}" + ("" if rgb or c == 1 else f"; each tile = mean over {c} input channels"))
    fig.suptitle(f"{title}\n{detail}", fontsize=10 if cols >= 4 else 8)
    return fig
