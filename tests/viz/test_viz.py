"""The pictures: each writes a PNG that Pillow opens, within its size bounds, and shows what it says.

The ``_figure_*`` builders return the matplotlib Figure behind each PNG, so the texts (titles,
notes, headings) and the colour scales are checked on the figure itself.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from convnet.errors import ConfigError, ShapeError  # noqa: E402
from convnet.viz import (  # noqa: E402
    plot_activations,
    plot_curves,
    plot_filters,
    plot_score_heatmap,
    plot_score_heatmaps,
)
from convnet.viz.activations import _figure_activations  # noqa: E402
from convnet.viz.heatmap import _figure_score_heatmaps  # noqa: E402
from convnet.viz.plots import _accuracy_limits, _figure_curves, _figure_filters  # noqa: E402


def _texts(fig) -> list[str]:
    """Every text the figure draws: figure texts, titles, annotations, legends, tick labels skipped."""
    out = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        out.append(fig._suptitle.get_text())
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()] + [t.get_text() for t in ax.texts]
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return [t for t in out if t]


def _colorbars(fig):
    return [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return im.size


def _history(accs, *, val=True):
    rows = []
    for e, a in enumerate(accs, start=1):
        row = {"epoch": e, "step": 10 * e, "lr": 0.1, "train_loss": 1.0 / e, "train_accuracy": a}
        if val:
            row.update(val_loss=1.2 / e, val_accuracy=a - 0.004)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- curves


def test_curves_mark_the_best_epoch_and_zoom_the_accuracy_axis(tmp_path):
    hist = _history([0.970, 0.981, 0.989, 0.9916, 0.990, 0.994, 0.995])
    hist[6]["val_accuracy"] = 0.9876
    path = plot_curves(hist, tmp_path / "curves.png", title="digits", best_epoch=7)
    assert _png_size(path) == (1100, 420)

    fig = _figure_curves(hist, title="digits", best_epoch=7)
    assert any("best val acc 0.9876 at epoch 7" in t for t in _texts(fig))
    ax_l, ax_a = fig.axes[:2]
    lo, hi = ax_a.get_ylim()
    assert lo > 0.95 and hi <= 1.0  # 0.97-1.0 fills the panel instead of its top 3 %
    assert 7 in [line.get_xdata()[0] for line in ax_l.get_lines() if len(line.get_xdata()) == 2]  # axvline


def test_accuracy_limits_keep_points_at_one_visible_and_never_squash():
    assert _accuracy_limits(np.array([0.97, 1.0]))[1] > 1.0
    lo, hi = _accuracy_limits(np.array([0.975, 0.98, 0.99]))
    assert 0.96 < lo < 0.975 and 0.99 < hi <= 1.0
    assert _accuracy_limits(np.zeros(0)) == (0.0, 1.0)


def test_curves_add_a_zoomed_panel_when_the_first_epochs_stretch_the_axis(tmp_path):
    hist = _history([0.6, 0.94, 0.975, 0.99, 0.992, 0.995, 0.996, 0.997, 0.998])
    fig = _figure_curves(hist, best_epoch=8)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 3
    zoom = fig.axes[2]
    assert "zoomed" in zoom.get_title() and zoom.get_ylim()[0] > 0.95
    assert [t.get_text() for t in zoom.get_legend().get_texts()][-1] == "best val acc 0.9930 at epoch 8"
    assert _png_size(plot_curves(hist, tmp_path / "c.png", best_epoch=8))[0] == 1500


def test_curves_without_validation_one_epoch_and_no_best(tmp_path):
    one = _history([0.5], val=False)
    assert _png_size(plot_curves(one, tmp_path / "one.png", best_epoch=1)) == (1100, 420)
    texts = _texts(_figure_curves(one, best_epoch=1))
    assert "validation" not in texts and any("best epoch 1" in t for t in texts)
    fig = _figure_curves(_history([0.5, 0.7, 0.8]), best_epoch=-1)  # the trainer's "no validation"
    assert not any("best" in t for t in _texts(fig))
    with pytest.raises(ConfigError, match="at least one epoch"):
        plot_curves([], tmp_path / "none.png")


# --------------------------------------------------------------------------------------------- filters


def test_filters_share_one_symmetric_scale_with_a_colour_bar(tmp_path, rng):
    w = rng.normal(size=(3, 3, 1, 16))
    w[..., 3] *= 5  # one strong filter: the others must look fainter, not be stretched to match it
    s = np.abs(w).max()
    fig = _figure_filters(w, title="conv1")
    images = [im for ax in fig.axes if ax not in _colorbars(fig) for im in ax.get_images()]
    assert len(images) == 16
    assert {(im.norm.vmin, im.norm.vmax) for im in images} == {(-s, s)}
    np.testing.assert_array_equal(images[5].get_array(), w[:, :, 0, 5])
    (bar,) = _colorbars(fig)
    assert bar._colorbar.norm.vmin == -s and bar._colorbar.norm.vmax == s and bar.get_ylabel() == "weight"
    assert [ax.get_title() for ax in fig.axes if ax.get_images()][:3] == ["0", "1", "2"]
    assert _png_size(plot_filters(w, tmp_path / "f.png")) < (1000, 1000)


def test_filters_cap_the_count_and_say_so(tmp_path, rng):
    w = rng.normal(size=(3, 3, 1, 100))
    fig = _figure_filters(w, title="conv1: 100 filters")
    assert "first 64 of 100 shown" in fig._suptitle.get_text()
    assert sum(len(ax.get_images()) for ax in fig.axes if ax not in _colorbars(fig)) == 64
    assert "shown" not in _figure_filters(w[..., :10])._suptitle.get_text()
    width, height = _png_size(plot_filters(w, tmp_path / "f.png"))
    assert width < 1200 and height < 1200


def test_rgb_filters_use_one_affine_map_for_all_channels(rng):
    w = rng.normal(size=(5, 5, 3, 8))
    s = np.abs(w).max()
    fig = _figure_filters(w)
    tiles = [ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images() and ax not in _colorbars(fig)]
    for k, tile in enumerate(tiles):
        np.testing.assert_allclose(tile, 0.5 + 0.5 * w[..., k] / s)
    assert "R, G, B" in _colorbars(fig)[0].get_ylabel()


def test_filters_reject_weights_that_are_not_hwio(tmp_path):
    with pytest.raises(ShapeError, match="HWIO"):
        plot_filters(np.zeros((3, 3, 4)), tmp_path / "f.png")


# ----------------------------------------------------------------------------------------- activations


def _resnet20_like(rng) -> dict[str, np.ndarray]:
    maps = {}
    for stage, (hw, c) in enumerate(((32, 16), (16, 32), (8, 64))):
        for k in range(20):
            maps[f"layer{stage + 1}.{k}"] = rng.normal(size=(hw, hw, c)) if k % 2 else rng.random((hw, hw, c))
    maps["avgpool"], maps["fc"] = rng.random(64), rng.random(10)
    return maps


def test_activations_of_a_deep_net_stay_within_the_size_bound_and_say_what_is_shown(tmp_path, rng):
    maps = _resnet20_like(rng)
    path = plot_activations(maps, tmp_path / "a.png", image=rng.random((32, 32, 3)), caption="cat (0.412), dog (0.301)")
    width, height = _png_size(path)
    assert width <= 2400 and height <= 2400

    fig = _figure_activations(maps, image=rng.random((32, 32, 3)), caption="cat (0.412), dog (0.301)")
    texts = _texts(fig)
    assert "cat (0.412), dog (0.301)" in texts
    (note,) = [t for t in texts if "of 60 layers" in t]
    shown = int(note.split()[0])
    assert 12 <= shown < 60
    headings = [t for t in texts if t.startswith("#")]
    assert len(headings) == shown and headings[0].startswith("#1/60") and headings[-1].startswith("#60/60")
    assert any("8×8×64 · 64 channels" in t for t in texts)


def test_activations_cap_the_channels_and_draw_the_input(tmp_path, rng):
    maps = {"conv1": rng.normal(size=(8, 8, 32)), "relu1": rng.random((8, 8, 32)), "fc": rng.random(10)}
    fig = _figure_activations(maps, image=rng.random((8, 8, 1)), caption="7 (0.982)", max_channels=16)
    texts = _texts(fig)
    assert "all 2 layers with (H, W, C) maps (#n/2: the layer's position)" in texts
    assert sum("16 of 32 channels" in t for t in texts) == 2
    grey = [im for ax in fig.axes for im in ax.get_images() if im.get_cmap().name == "gray"]
    assert len(grey) == 1 and grey[0].get_array().shape == (8, 8)
    assert len(_colorbars(fig)) == 2
    width, height = _png_size(plot_activations(maps, tmp_path / "a.png", max_channels=16))
    assert width <= 2400 and height <= 2400


def test_activations_with_tight_bounds_and_no_maps(tmp_path, rng):
    maps = _resnet20_like(rng)
    assert _png_size(plot_activations(maps, tmp_path / "s.png", max_width_px=800, max_height_px=600))[0] <= 800
    assert _png_size(plot_activations(maps, tmp_path / "s.png", max_width_px=800, max_height_px=600))[1] <= 600
    assert "no (H, W, C) activation maps to show" in _texts(_figure_activations({"fc": np.ones(10)}))
    with pytest.raises(ConfigError, match="max_width_px"):
        plot_activations(maps, tmp_path / "s.png", max_width_px=100)


# -------------------------------------------------------------------------------------------- heatmaps


def test_score_heatmaps_one_panel_per_class(tmp_path, rng):
    image = rng.random((24, 40, 1))
    maps = {"9": rng.random((9, 17)), "5": rng.random((9, 17)), "7": rng.random((9, 17))}
    fig = _figure_score_heatmaps(image, maps, crop_shape=(8, 8), step=(2, 2), title="big.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"{k} — mean P {m.mean():.3f}" for k, m in maps.items()]
    assert len(_colorbars(fig)) == 1
    assert _png_size(plot_score_heatmaps(image, maps, crop_shape=(8, 8), step=(2, 2), path=tmp_path / "h.png"))


def test_single_score_heatmap_still_works(tmp_path, rng):
    image, m = rng.random((24, 40, 3)), rng.random((9, 17))
    path = plot_score_heatmap(image, m, crop_shape=(8, 8), step=(2, 2), path=tmp_path / "h.png", title="P(7)")
    assert _png_size(path)[0] > 300
    fig = _figure_score_heatmaps(image, {"P(7)": m}, crop_shape=(8, 8), step=(2, 2), title=None)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == [f"P(7) (mean P {m.mean():.3f})"]
    with pytest.raises(ShapeError):
        plot_score_heatmaps(image, {"a": np.ones(3)}, crop_shape=(8, 8), step=(2, 2), path=tmp_path / "x.png")
