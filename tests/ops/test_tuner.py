"""The tuning cache and the tuner: per-machine choice of the convolution algorithm (no timing asserted)."""
import json
import warnings

import numpy as np
import pytest

from convnet.analysis.explain import explain
from convnet.ops import conv as plain
from convnet.ops.fast import clear_plans, conv2d_backward, conv2d_forward, conv_plan, tuner, tuning
from convnet.pattern import parse

X, W = (2, 8, 8, 16), (3, 3, 16, 16)  # the cost model picks direct (numba) or im2col / winograd4


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CONVNET_TUNE", raising=False)
    monkeypatch.setattr(tuning, "_warned", False)
    monkeypatch.setattr(tuning, "_loaded", {})
    clear_plans()
    yield tmp_path
    clear_plans()


def _key(x_shape=X, w_shape=W, dtype=np.float32, padding=1):
    plan = conv_plan(x_shape, w_shape, dtype, padding=padding, algorithm="im2col")
    return tuning.shape_key(x_shape, w_shape, dtype, plan.geom, plan.groups, plan.compiled)


def _other(algorithm):
    """An algorithm that applies to X, W and that the cost model does not pick."""
    return next(a for a in ("im2col", "winograd2", "winograd4") if a != algorithm)


def _write(path, machines):
    path.write_text(json.dumps({"format": tuning.FORMAT, "machines": machines}))


def test_round_trip_is_atomic(cache_dir):
    entry = {"algorithm": "im2col", "times_ms": {"im2col": 1.0}}
    path = tuning.store({_key(): entry})
    assert path == cache_dir / "tuning.json"
    assert [p.name for p in cache_dir.iterdir()] == ["tuning.json"]  # no temporary file left behind
    data = json.loads(path.read_text())
    assert data["format"] == tuning.FORMAT and data["machines"][tuning.machine_key()] == {_key(): entry}
    tuning.store({"other": {"algorithm": "direct"}})  # merged, not replaced
    assert tuning.load()[tuning.machine_key()].keys() == {_key(), "other"}


def test_failed_write_leaves_the_old_file(cache_dir, monkeypatch):
    tuning.store({_key(): {"algorithm": "im2col"}})
    before = (cache_dir / "tuning.json").read_text()

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(tuning.os, "replace", boom)
    with pytest.raises(OSError):
        tuning.store({"other": {"algorithm": "direct"}})
    assert (cache_dir / "tuning.json").read_text() == before
    assert [p.name for p in cache_dir.iterdir()] == ["tuning.json"]


@pytest.mark.parametrize("text", ["{not json", json.dumps({"format": "someone-else/3", "machines": {}}), "[1, 2]"])
def test_corrupt_or_foreign_file_warns_once_and_falls_back(cache_dir, text):
    model = conv_plan(X, W, np.float32, padding=1)
    clear_plans()
    (cache_dir / "tuning.json").write_text(text)
    with pytest.warns(RuntimeWarning, match="Ignoring the tuning cache"):
        plan = conv_plan(X, W, np.float32, padding=1)
    assert plan.algorithm == model.algorithm and plan.source == "cost model"
    clear_plans()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conv_plan(X, W, np.float32, padding=1)  # no second warning in this process
    tuning.store({_key(): {"algorithm": "im2col"}})  # rewritten on the next save
    assert json.loads((cache_dir / "tuning.json").read_text())["format"] == tuning.FORMAT


def test_tuned_choice_is_used_and_explained(cache_dir):
    model = conv_plan(X, W, np.float32, padding=1)
    assert model.source == "cost model"
    other = _other(model.algorithm)
    tuning.store({_key(): {"algorithm": other}})
    clear_plans()
    plan = conv_plan(X, W, np.float32, padding=1)
    assert (plan.algorithm, plan.source) == (other, "tuned") and plan.reason.startswith("tuned on this machine")
    assert conv_plan(X, W, np.float32, padding=1, algorithm=model.algorithm).source == "requested"
    net = parse("INPUT[8x8x16] -> CONV3-16 -> RELU -> CONV3-16")
    net.build()
    choices = explain(net, batch=2).choices
    assert [(c.algorithm, c.source) for c in choices] == [(other, "tuned")] * 2
    text = explain(net, batch=2).to_text()
    assert " tuned " in text and "by" in text.splitlines()[1]
    assert explain(net, batch=3).choices[0].source == "cost model"  # another shape: never timed


@pytest.mark.parametrize("change", ["machine", "dtype", "tune off"])
def test_cache_not_used_for_another_key_or_when_off(cache_dir, monkeypatch, change):
    model = conv_plan(X, W, np.float32, padding=1)
    other = _other(model.algorithm)
    if change == "machine":  # another CPU, versions or thread count
        _write(cache_dir / "tuning.json", {tuning.machine_key() + " (other)": {_key(): {"algorithm": other}}})
    else:
        tuning.store({_key(): {"algorithm": other}})
    if change == "tune off":
        monkeypatch.setenv("CONVNET_TUNE", "0")
    clear_plans()
    dtype = np.float64 if change == "dtype" else np.float32
    plan = conv_plan(X, W, dtype, padding=1)
    assert plan.algorithm == model.algorithm and plan.source == "cost model"


def test_thread_count_is_in_the_machine_key(monkeypatch):
    monkeypatch.setenv("CONVNET_THREADS", "1")
    one = tuning.machine_key()
    monkeypatch.setenv("CONVNET_THREADS", "2")
    assert tuning.machine_key() != one or tuning.parallel.threads() == 1


def test_an_entry_that_does_not_apply_falls_back(cache_dir):
    tuning.store({_key(): {"algorithm": "gemm1x1"}})  # not a 1×1 layer
    clear_plans()
    plan = conv_plan(X, W, np.float32, padding=1)
    assert plan.source == "cost model" and plan.algorithm != "gemm1x1"


@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((2, 8, 8, 16), (3, 3, 16, 16), dict(padding=1)),
    ((2, 9, 9, 8), (3, 3, 8, 12), dict(stride=2, padding=1)),
    ((2, 6, 6, 8), (1, 1, 8, 16), {}),
    ((4, 3, 3, 16), (3, 3, 16, 16), dict(padding=1)),
    ((2, 8, 8, 8), (3, 3, 4, 8), dict(padding=1, groups=2)),
])
def test_tuner_picks_applicable_and_results_equal_the_op(cache_dir, rng, x_shape, w_shape, kw):
    results = tuner.tune_shapes([("conv", x_shape, w_shape, kw)], np.float64, repeats=1)
    (t,) = results
    applicable = tuner.candidates(x_shape, w_shape, np.float64, **kw)
    assert set(t.times_ms) == set(applicable) and t.algorithm in applicable and t.cost_model in applicable
    for a in applicable:  # every candidate is one conv_plan accepts
        conv_plan(x_shape, w_shape, np.float64, algorithm=a, **kw)
    plan = conv_plan(x_shape, w_shape, np.float64, **kw)
    assert plan.algorithm == t.algorithm
    assert plan.source == ("tuned" if tuning.enabled() else "cost model")
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[3])
    y, cache = conv2d_forward(x, w, b, **kw)
    y_req, cache_req = conv2d_forward(x, w, b, algorithm=t.algorithm, **kw)
    np.testing.assert_array_equal(y, y_req)  # the tuned plan is exactly the op with that algorithm
    y_ref, _ = plain.conv2d_forward(x, w, b, **kw)
    np.testing.assert_allclose(y, y_ref, rtol=1e-9, atol=1e-9)
    dy = rng.standard_normal(y.shape)
    for g, g_req in zip(conv2d_backward(dy, cache), conv2d_backward(dy, cache_req)):
        np.testing.assert_array_equal(g, g_req)


def test_tuner_keeps_the_cost_model_within_the_margin(monkeypatch):
    times = iter([1.0, 1.0, 1.0, 0.97, 0.97, 0.97] * 10)
    monkeypatch.setattr(tuner, "_time_once", lambda *a: next(times))
    model, winner, ms = tuner.tune_shape((2, 8, 8, 16), (1, 1, 16, 16), np.float32, repeats=2)
    assert model == winner == "gemm1x1" and "im2col" in ms  # 3 % faster is noise


@pytest.mark.parametrize("confirm, expected", [((0.5, 1.0) * 3, "im2col"), ((1.0, 1.0) * 3, "gemm1x1")])
def test_a_challenger_must_win_again_when_timed_alternately(monkeypatch, confirm, expected):
    """im2col beats gemm1x1 by half in the first pass; it replaces it only if it wins the
    alternate runs too (the machine may have been slower while gemm1x1 ran)."""
    first = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]  # gemm1x1: warm-up + 2 runs, then im2col
    confirm_runs = [t for pair in zip(confirm[1::2], confirm[0::2]) for t in pair]  # model, winner, ...
    times = iter(first + confirm_runs)
    monkeypatch.setattr(tuner, "_time_once", lambda *a: next(times))
    monkeypatch.setattr(tuner, "candidates", lambda *a, **k: ["gemm1x1", "im2col"])
    model, winner, ms = tuner.tune_shape((2, 8, 8, 16), (1, 1, 16, 16), np.float32, repeats=2)
    assert model == "gemm1x1" and winner == expected


def test_auto_times_an_unseen_shape_on_first_use(cache_dir, monkeypatch):
    monkeypatch.setattr(tuning, "_session", {})
    monkeypatch.setenv("CONVNET_TUNE", "auto")
    plan = conv_plan(X, W, np.float32, padding=1)
    assert plan.source == "tuned" and plan.algorithm in tuner.candidates(X, W, np.float32, padding=1)
    entry = tuning.load()[tuning.machine_key()][_key()]
    assert entry["algorithm"] == plan.algorithm and plan.algorithm in entry["times_ms"]
    monkeypatch.setenv("CONVNET_TUNE", "1")  # the default: nothing timed, the file still read
    clear_plans()
    assert conv_plan(X, W, np.float32, padding=1).source == "tuned"
    assert conv_plan((3, 8, 8, 16), W, np.float32, padding=1).source == "cost model"


def test_auto_with_an_unwritable_cache_warns_once(cache_dir, monkeypatch):
    monkeypatch.setattr(tuning, "_session", {})
    monkeypatch.setattr(tuner, "_store_warned", False)
    monkeypatch.setenv("CONVNET_CACHE_DIR", str(cache_dir / "file"))
    (cache_dir / "file").write_text("not a folder")
    monkeypatch.setenv("CONVNET_TUNE", "auto")
    with pytest.warns(RuntimeWarning, match="Cannot save the tuning cache"):
        plan = conv_plan(X, W, np.float32, padding=1)
    assert plan.source == "tuned"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert conv_plan((3, 8, 8, 16), W, np.float32, padding=1).source == "tuned"
