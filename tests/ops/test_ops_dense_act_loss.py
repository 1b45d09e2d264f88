"""Dense, ReLU, dropout, softmax cross-entropy and the multiclass SVM."""
from __future__ import annotations

import numpy as np
import pytest

from convnet.ops import reference as ref
from convnet.ops.activations import dropout_backward, dropout_forward, relu, relu_backward, relu_forward
from convnet.ops.dense import dense_backward, dense_forward
from convnet.ops.losses import (
    multiclass_svm_backward,
    multiclass_svm_forward,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from oracle import assert_close, away_from_zero, gradcheck, n, t

DTYPES = [np.float64, np.float32]
DT_IDS = ["f64", "f32"]


# -- dense ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 4), (5, 2, 9)], ids=str)
def test_dense_forward_and_backward(shape, bias, rng):
    n_, d, k = shape
    x, w = rng.standard_normal((n_, d)), rng.standard_normal((d, k))
    b = rng.standard_normal(k) if bias else None
    y, cache = dense_forward(x, w, b)
    assert_close(y, ref.dense(x, w, b))
    y32, _ = dense_forward(x.astype(np.float32), w.astype(np.float32), None if b is None else b.astype(np.float32))
    assert y32.dtype == np.float32
    assert_close(y32, ref.dense(x, w, b), dtype=np.float32)
    arrays = {"x": x, "w": w} if b is None else {"x": x, "w": w, "b": b}

    def f(x, w, b=None):
        return dense_forward(x, w, b)[0]

    def vjp(dy, x, w, b=None):
        dx, dw, db = dense_backward(dy, dense_forward(x, w, b)[1])
        assert (db is None) == (b is None)
        return {"x": dx, "w": dw, "b": db}

    gradcheck(f, vjp, arrays, rng=rng, mode="full")


def test_dense_backward_projection_larger(rng):
    x, w, b = rng.standard_normal((16, 40)), rng.standard_normal((40, 30)), rng.standard_normal(30)
    gradcheck(lambda x, w, b: dense_forward(x, w, b)[0],
              lambda dy, x, w, b: dict(zip("x w b".split(), dense_backward(dy, dense_forward(x, w, b)[1]))),
              {"x": x, "w": w, "b": b}, rng=rng, mode="projection")


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_dense_matches_torch(dtype, rng, torch):
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((4, 6), (6, 3), (3,)))
    y, cache = dense_forward(x, w, b)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = dense_backward(dy, cache)
    xt, wt, bt = t(torch, x, grad=True), t(torch, w.T, grad=True), t(torch, b, grad=True)  # torch: (out, in)
    yt = torch.nn.functional.linear(xt, wt, bt)
    yt.backward(t(torch, dy))
    assert_close(y, n(yt), dtype=dtype)
    assert_close(dx, n(xt.grad), dtype=dtype)
    assert_close(dw, n(wt.grad).T, dtype=dtype)
    assert_close(db, n(bt.grad), dtype=dtype)


# -- relu -----------------------------------------------------------------------------------------
def test_relu_forward_backward(rng):
    x = away_from_zero(rng, (2, 3, 4, 2))
    y, cache = relu_forward(x)
    assert_close(y, ref.relu(x))
    np.testing.assert_array_equal(relu(x), y)
    gradcheck(lambda x: relu_forward(x)[0], lambda dy, x: {"x": relu_backward(dy, relu_forward(x)[1])},
              {"x": x}, rng=rng, mode="full")
    big = away_from_zero(rng, (8, 6, 5, 4))
    gradcheck(lambda x: relu_forward(x)[0], lambda dy, x: {"x": relu_backward(dy, relu_forward(x)[1])},
              {"x": big}, rng=rng, mode="projection")


def test_relu_gradient_is_zero_at_the_kink():
    x = np.array([[-1.0, 0.0, 2.0]])
    y, cache = relu_forward(x)
    np.testing.assert_array_equal(relu_backward(np.array([[3.0, 5.0, 7.0]]), cache), [[0.0, 0.0, 7.0]])


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relu_matches_torch(dtype, rng, torch):
    x = away_from_zero(rng, (2, 3, 3, 4), dtype=dtype)
    x.reshape(-1)[:3] = 0  # the kink: both give gradient 0 there
    y, cache = relu_forward(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = t(torch, x, grad=True)
    yt = torch.relu(xt)
    yt.backward(t(torch, dy))
    np.testing.assert_array_equal(y, n(yt))
    np.testing.assert_array_equal(relu_backward(dy, cache), n(xt.grad))


# -- dropout --------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_statistics_and_scaling(rate):
    x = np.full((50, 40, 50), 2.0, dtype=np.float32)
    y, cache = dropout_forward(x, rate=rate, rng=np.random.default_rng(7))
    assert y.dtype == np.float32
    kept = y != 0
    m = x.size
    sigma = np.sqrt(rate * (1 - rate) / m)
    assert abs(kept.mean() - (1 - rate)) < 5 * sigma
    np.testing.assert_allclose(y[kept], 2.0 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(cache.mask, kept)
    dy = np.random.default_rng(8).standard_normal(x.shape).astype(np.float32)
    dx = dropout_backward(dy, cache)
    np.testing.assert_allclose(dx, dy * kept / (1 - rate), rtol=1e-6)
    assert abs(float(y.mean()) - 2.0) < 5 * 2.0 * sigma / (1 - rate)  # inverted dropout keeps the mean


def test_dropout_is_reproducible_with_a_seed(rng):
    x = rng.standard_normal((4, 5, 5, 3))
    y1, _ = dropout_forward(x, rate=0.5, rng=np.random.default_rng(123))
    y2, _ = dropout_forward(x, rate=0.5, rng=np.random.default_rng(123))
    y3, _ = dropout_forward(x, rate=0.5, rng=np.random.default_rng(124))
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)


def test_dropout_identity_at_inference_and_rate_zero(rng):
    x = rng.standard_normal((3, 4))
    for kwargs in (dict(rate=0.5, train=False), dict(rate=0.0)):
        y, cache = dropout_forward(x, rng=np.random.default_rng(0), **kwargs)
        np.testing.assert_array_equal(y, x)
        dy = rng.standard_normal(x.shape)
        np.testing.assert_array_equal(dropout_backward(dy, cache), dy)


def test_dropout_backward_finite_differences(rng):
    x = rng.standard_normal((3, 5))

    def f(x):
        return dropout_forward(x, rate=0.4, rng=np.random.default_rng(5))[0]

    def vjp(dy, x):
        return {"x": dropout_backward(dy, dropout_forward(x, rate=0.4, rng=np.random.default_rng(5))[1])}

    gradcheck(f, vjp, {"x": x}, rng=rng, mode="full")


@pytest.mark.oracle
def test_dropout_scaling_like_torch(torch):
    rate = 0.3
    xt = torch.ones(20000, dtype=torch.float64)
    yt = n(torch.nn.functional.dropout(xt, p=rate, training=True))
    y, _ = dropout_forward(np.ones(20000), rate=rate, rng=np.random.default_rng(1))
    # both scale kept units by 1/(1 - rate) and keep about 1 - rate of them
    np.testing.assert_allclose(np.unique(yt[yt != 0]), np.unique(y[y != 0]), rtol=1e-12)
    sigma = np.sqrt(rate * (1 - rate) / 20000)
    assert abs((yt != 0).mean() - (y != 0).mean()) < 8 * sigma


# -- losses ---------------------------------------------------------------------------------------
def _labels(rng, n_, k):
    return rng.integers(0, k, size=n_)


@pytest.mark.parametrize("shape", [(1, 2), (4, 5), (7, 3)], ids=str)
def test_softmax_cross_entropy(shape, rng):
    scores = rng.standard_normal(shape) * 2
    labels = _labels(rng, *shape)
    loss, _ = softmax_cross_entropy_forward(scores, labels)
    assert isinstance(loss, float)
    assert loss == pytest.approx(ref.softmax_cross_entropy(scores, labels), rel=1e-12)
    gradcheck(lambda s: softmax_cross_entropy_forward(s, labels)[0],
              lambda dl, s: {"s": softmax_cross_entropy_backward(dl, softmax_cross_entropy_forward(s, labels)[1])},
              {"s": scores}, rng=rng, mode="full")
    p = softmax(scores)
    assert_close(p.sum(axis=1), np.ones(shape[0]))


def test_softmax_cross_entropy_is_stable_for_large_scores():
    scores = np.array([[1000.0, 0.0, -1000.0], [-5000.0, 5000.0, 0.0]])
    loss, cache = softmax_cross_entropy_forward(scores, np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(5000.0, rel=1e-12)
    assert np.all(np.isfinite(softmax_cross_entropy_backward(1.0, cache)))
    s32 = scores.astype(np.float32)
    loss32, cache32 = softmax_cross_entropy_forward(s32, np.array([0, 0]))
    assert np.isfinite(loss32) and softmax_cross_entropy_backward(1.0, cache32).dtype == np.float32


def _svm_scores(rng, shape, delta):
    """Scores whose every margin s_k - s_y + delta stays at least 1e-3 away from the hinge."""
    while True:
        s = rng.standard_normal(shape) * 2
        y = _labels(rng, *shape)
        m = s - s[np.arange(shape[0]), y][:, None] + delta
        m[np.arange(shape[0]), y] = 10.0
        if np.all(np.abs(m) > 1e-3):
            return s, y


@pytest.mark.parametrize("delta", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("shape", [(1, 2), (4, 5), (6, 3)], ids=str)
def test_multiclass_svm(shape, delta, rng):
    scores, labels = _svm_scores(rng, shape, delta)
    loss, _ = multiclass_svm_forward(scores, labels, delta=delta)
    assert isinstance(loss, float)
    assert loss == pytest.approx(ref.multiclass_svm(scores, labels, delta=delta), rel=1e-12, abs=1e-14)
    gradcheck(lambda s: multiclass_svm_forward(s, labels, delta=delta)[0],
              lambda dl, s: {"s": multiclass_svm_backward(dl, multiclass_svm_forward(s, labels, delta=delta)[1])},
              {"s": scores}, rng=rng, mode="full")


def test_svm_notes_example():
    """CS231n: scores [13, -7, 11], correct class 0, delta 10 -> loss 8."""
    loss, _ = multiclass_svm_forward(np.array([[13.0, -7.0, 11.0]]), np.array([0]), delta=10.0)
    assert loss == 8.0


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_losses_match_torch(dtype, rng, torch):
    F = torch.nn.functional
    scores, labels = _svm_scores(rng, (6, 5), 1.0)
    scores = scores.astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    dl = float(rng.uniform(0.5, 2.0))
    for kind in ("ce", "svm"):
        st_ = t(torch, scores, grad=True)
        lt_ = t(torch, labels.astype(np.int64))
        if kind == "ce":
            loss, cache = softmax_cross_entropy_forward(scores, labels)
            ds = softmax_cross_entropy_backward(dl, cache)
            tl = F.cross_entropy(st_, lt_)
        else:
            loss, cache = multiclass_svm_forward(scores, labels, delta=1.0)
            ds = multiclass_svm_backward(dl, cache)
            tl = F.multi_margin_loss(st_, lt_, margin=1.0) * scores.shape[1]  # PyTorch divides by K
        (tl * dl).backward()
        assert loss == pytest.approx(float(tl.detach()), rel=tol)
        assert ds.dtype == dtype
        assert_close(ds, n(st_.grad), dtype=dtype, what=kind)
