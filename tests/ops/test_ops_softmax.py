"""softmax / log_softmax over any axis (issue 16): the reference loops, finite differences with a
random dy, PyTorch, stability at extreme scores, axis checks, and the loss's softmax being the same op."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, DTypeError, ShapeError
from convnet.ops import losses
from convnet.ops import reference as ref
from convnet.ops.softmax import (
    log_softmax,
    log_softmax_backward,
    log_softmax_forward,
    normalize_axes,
    softmax,
    softmax_backward,
    softmax_forward,
)
from oracle import assert_close, gradcheck, n, t

OPS = {
    "softmax": (softmax_forward, softmax_backward, ref.softmax),
    "log_softmax": (log_softmax_forward, log_softmax_backward, ref.log_softmax),
}
AXES = [-1, 1, 2, (1, 2), (1, 2, 3), -3, (-1, 1)]


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", sorted(OPS))
def test_forward_matches_the_reference(name, axis, rng):
    forward, _, reference = OPS[name]
    x = rng.standard_normal((2, 3, 4, 5)) * 3
    y, cache = forward(x, axis=axis)
    axes = axis if isinstance(axis, tuple) else (axis,)
    assert_close(y, reference(x, axes))
    assert cache.y is y
    y32, _ = forward(x.astype(np.float32), axis=axis)
    assert y32.dtype == np.float32
    assert_close(y32, reference(x, axes), dtype=np.float32)


@pytest.mark.parametrize("axis", AXES, ids=str)
def test_softmax_sums_to_one_and_log_softmax_is_its_log(axis, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    y = softmax(x, axis=axis)
    axes = normalize_axes(axis, 4)
    assert_close(y.sum(axis=axes), np.ones([s for a, s in enumerate(x.shape) if a not in axes]))
    assert_close(log_softmax(x, axis=axis), np.log(y))


@pytest.mark.parametrize("axis", [-1, 1, (1, 2)], ids=str)
@pytest.mark.parametrize("name", sorted(OPS))
def test_backward_matches_finite_differences(name, axis, rng):
    forward, backward, _ = OPS[name]

    def f(x):
        return forward(x, axis=axis)[0]

    def vjp(dy, x):
        return {"x": backward(dy, forward(x, axis=axis)[1])}

    gradcheck(f, vjp, {"x": rng.standard_normal((2, 2, 3, 3))}, rng=rng, mode="full")
    gradcheck(f, vjp, {"x": rng.standard_normal((3, 5, 4, 6))}, rng=rng, mode="projection")


@pytest.mark.parametrize("name", sorted(OPS))
def test_vectors(name, rng):
    forward, backward, reference = OPS[name]
    x = rng.standard_normal((4, 7))
    y, cache = forward(x)
    assert_close(y, reference(x, (-1,)))
    gradcheck(lambda x: forward(x)[0], lambda dy, x: {"x": backward(dy, forward(x)[1])}, {"x": x}, rng=rng,
              mode="full")


def test_extreme_scores_stay_finite():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e30, -1e30, -1e30]])
    y = softmax(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3] * 3])
    ly = log_softmax(x)
    assert np.all(np.isfinite(ly))
    np.testing.assert_allclose(ly[0], [0, -1000, -2000])
    x32 = np.array([[88.0, 89.0, 90.0]], dtype=np.float32)  # exp overflows float32 past ~88.7
    assert np.all(np.isfinite(softmax(x32))) and np.all(np.isfinite(log_softmax(x32)))


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("axis", [-1, 1, 2, (1, 2)], ids=str)
@pytest.mark.parametrize("name", sorted(OPS))
def test_matches_torch(name, axis, dtype, rng, torch):
    forward, backward, _ = OPS[name]
    x = (rng.standard_normal((2, 3, 4, 5)) * 4).astype(dtype)
    y, cache = forward(x, axis=axis)
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = t(torch, x, grad=True)
    if isinstance(axis, tuple):  # torch normalises over one dim: flatten the axes into one
        moved = xt.permute(0, 3, 1, 2).reshape(2, 5, 12)
        fn = torch.softmax if name == "softmax" else torch.log_softmax
        yt = fn(moved, dim=-1).reshape(2, 5, 3, 4).permute(0, 2, 3, 1)
    else:
        yt = (torch.softmax if name == "softmax" else torch.log_softmax)(xt, dim=axis)
    yt.backward(t(torch, dy))
    assert_close(y, n(yt), dtype=dtype)
    assert_close(backward(dy, cache), n(xt.grad), dtype=dtype)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.data())
def test_property_any_rank_and_axes(rank, data):
    """Any rank 1-4 and any non-empty set of axes: the reference values, and a backward that
    matches the directional derivative (float64) — with softmax's gradient summing to 0 over the axes."""
    shape = tuple(data.draw(st.integers(1, 4)) for _ in range(rank))
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, rank - 1), min_size=1))))
    seed = data.draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 5
    for name, (forward, backward, reference) in OPS.items():
        y, cache = forward(x, axis=axes)
        assert_close(y, reference(x, axes), what=name)
        dy = rng.standard_normal(shape)
        dx = backward(dy, cache)
        if name == "softmax":
            assert np.allclose(dx.sum(axis=axes), 0, atol=1e-12)
        v = rng.standard_normal(shape)
        eps = 1e-6
        numeric = (np.sum(dy * forward(x + eps * v, axis=axes)[0]) - np.sum(dy * forward(x - eps * v, axis=axes)[0]))
        assert abs(numeric / (2 * eps) - np.sum(dx * v)) <= 1e-6 * (np.abs(dx * v).sum() + 1), name


def test_the_loss_uses_the_same_softmax(rng):
    s = rng.standard_normal((5, 7))
    assert losses.softmax is softmax
    _, cache = losses.softmax_cross_entropy_forward(s, np.arange(5) % 7)
    onehot = np.eye(7)[np.arange(5) % 7]
    assert_close(cache.grad, (softmax(s) - onehot) / 5)


@pytest.mark.parametrize("axis, error, match", [
    (4, ShapeError, "out of range"),
    (-5, ShapeError, "out of range"),
    ((1, 1), ConfigError, "same axis twice"),
    ((1, -3), ConfigError, "same axis twice"),
    ((), ConfigError, "non-empty"),
    (1.0, ConfigError, "int"),
])
@pytest.mark.parametrize("op", [softmax, log_softmax], ids=["softmax", "log_softmax"])
def test_bad_axis(op, axis, error, match):
    with pytest.raises(error, match=match):
        op(np.zeros((2, 3, 4, 5)), axis=axis)


def test_bad_inputs():
    with pytest.raises(DTypeError):
        softmax(np.zeros((2, 3), dtype=np.int64))
    _, cache = softmax_forward(np.zeros((2, 3)))
    with pytest.raises(ShapeError, match="forward output's shape"):
        softmax_backward(np.zeros((3, 2)), cache)
    _, cache = log_softmax_forward(np.zeros((2, 3)))
    with pytest.raises(ShapeError, match="forward output's shape"):
        log_softmax_backward(np.zeros((2, 4)), cache)
