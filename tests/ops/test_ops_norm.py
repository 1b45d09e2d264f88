"""Local response normalization and batch normalization: reference, finite differences, PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, ShapeError
from convnet.ops import reference as ref
from convnet.ops.norm import (
    batch_norm_backward,
    batch_norm_forward,
    local_response_norm_backward,
    local_response_norm_forward,
)
from oracle import assert_close, gradcheck, n, nchw_to_nhwc, nhwc_to_nchw, t

# -- local response normalization ---------------------------------------------------------------------
LRN_CASES = [
    ((2, 3, 2, 7), dict(size=5, alpha=1e-4, beta=0.75, k=2.0)),  # AlexNet
    ((1, 2, 3, 6), dict(size=4, alpha=0.5, beta=0.75, k=1.0)),  # even size: window c-2 .. c+1
    ((2, 2, 2, 3), dict(size=7, alpha=2.0, beta=0.5, k=1.5)),  # window wider than C
    ((1, 2, 2, 4), dict(size=1, alpha=0.3, beta=1.2, k=0.5)),
    ((1, 3, 1, 5), dict(size=3, alpha=1.0, beta=0.25, k=1.0)),
]


@pytest.mark.parametrize("shape, kw", LRN_CASES)
def test_lrn_forward_matches_reference(shape, kw, rng):
    x = rng.standard_normal(shape) * 2
    y, _ = local_response_norm_forward(x, **kw)
    assert_close(y, ref.local_response_norm(x, **kw))
    y32, _ = local_response_norm_forward(x.astype(np.float32), **kw)
    assert y32.dtype == np.float32
    assert_close(y32, ref.local_response_norm(x, **kw), dtype=np.float32)


@pytest.mark.parametrize("shape, kw", LRN_CASES)
def test_lrn_backward_full_jacobian(shape, kw, rng):
    x = rng.standard_normal((1, *shape[1:])) * 2
    gradcheck(lambda x: local_response_norm_forward(x, **kw)[0],
              lambda dy, x: {"x": local_response_norm_backward(dy, local_response_norm_forward(x, **kw)[1])},
              {"x": x}, rng=rng, mode="full")


def test_lrn_backward_projection_larger(rng):
    x = rng.standard_normal((3, 5, 4, 16)) * 3
    kw = dict(size=5, alpha=1.0, beta=0.75, k=1.0)
    gradcheck(lambda x: local_response_norm_forward(x, **kw)[0],
              lambda dy, x: {"x": local_response_norm_backward(dy, local_response_norm_forward(x, **kw)[1])},
              {"x": x}, rng=rng, mode="projection")


@settings(max_examples=30, deadline=None)
@given(c=st.integers(1, 9), size=st.integers(1, 8), alpha=st.floats(0.01, 3), beta=st.floats(0.1, 1.5),
       k=st.floats(0.5, 3), seed=st.integers(0, 2**31))
def test_property_lrn_matches_reference(c, size, alpha, beta, k, seed):
    x = np.random.default_rng(seed).standard_normal((1, 2, 2, c)) * 2
    y, _ = local_response_norm_forward(x, size=size, alpha=alpha, beta=beta, k=k)
    assert_close(y, ref.local_response_norm(x, size=size, alpha=alpha, beta=beta, k=k))


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape, kw", LRN_CASES)
def test_lrn_matches_torch(shape, kw, dtype, rng, torch):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    y, cache = local_response_norm_forward(x, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = local_response_norm_backward(dy, cache)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    yt = torch.nn.functional.local_response_norm(xt, kw["size"], alpha=kw["alpha"], beta=kw["beta"], k=kw["k"])
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)), dtype=dtype, what="y")
    assert_close(dx, nchw_to_nhwc(n(xt.grad)), dtype=dtype, what="dx")
    assert y.dtype == dx.dtype == dtype


def test_lrn_alexnet_alpha_convention():
    """AlexNet's alpha=1e-4 (no division by n) is alpha = size·1e-4 here."""
    x = np.zeros((1, 1, 1, 5))
    x[..., 2] = 10.0
    y, _ = local_response_norm_forward(x, size=5, alpha=5e-4, beta=0.75, k=2.0)
    assert y[0, 0, 0, 2] == pytest.approx(10.0 * (2.0 + 1e-4 * 100.0) ** -0.75, rel=1e-12)


# -- batch normalization ------------------------------------------------------------------------------
BN_SHAPES = [(4, 3), (3, 2, 3, 4), (2, 1, 1, 3), (1, 3, 2, 2)]


def _bn_inputs(rng, shape, dtype=np.float64):
    c = shape[-1]
    x = (rng.standard_normal(shape) * 1.5 + rng.standard_normal(c)).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    running_mean = rng.standard_normal(c).astype(dtype)
    running_var = rng.uniform(0.5, 2.0, c).astype(dtype)
    return x, gamma, beta, running_mean, running_var


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_bn_forward_matches_reference(shape, train, rng):
    x, gamma, beta, rm, rv = _bn_inputs(rng, shape)
    y, cache = batch_norm_forward(x, gamma, beta, train=train, running_mean=rm, running_var=rv, eps=1e-3)
    ey, mean, var = ref.batch_norm(x, gamma, beta, train=train, running_mean=rm, running_var=rv, eps=1e-3)
    assert_close(y, ey)
    assert_close(cache.mean, mean)
    assert_close(cache.var, var)  # biased batch variance in training
    if train:
        axes = tuple(range(x.ndim - 1))
        assert_close(cache.var, x.var(axis=axes, ddof=0))
        assert cache.count == x.size // shape[-1]
    y32, _ = batch_norm_forward(*(a.astype(np.float32) for a in (x, gamma, beta)), train=train,
                                running_mean=rm.astype(np.float32), running_var=rv.astype(np.float32), eps=1e-3)
    assert y32.dtype == np.float32
    assert_close(y32, ey, dtype=np.float32)


def _bn_fns(train, rm, rv):
    def f(x, gamma, beta):
        return batch_norm_forward(x, gamma, beta, train=train, running_mean=rm, running_var=rv)[0]

    def vjp(dy, x, gamma, beta):
        _, cache = batch_norm_forward(x, gamma, beta, train=train, running_mean=rm, running_var=rv)
        dx, dgamma, dbeta = batch_norm_backward(dy, cache)
        return {"x": dx, "gamma": dgamma, "beta": dbeta}

    return f, vjp


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_bn_backward_full_jacobian(shape, train, rng):
    x, gamma, beta, rm, rv = _bn_inputs(rng, shape)
    f, vjp = _bn_fns(train, rm, rv)
    gradcheck(f, vjp, {"x": x, "gamma": gamma, "beta": beta}, rng=rng, mode="full")


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_bn_backward_projection_larger(train, rng):
    x, gamma, beta, rm, rv = _bn_inputs(rng, (6, 5, 4, 8))
    f, vjp = _bn_fns(train, rm, rv)
    gradcheck(f, vjp, {"x": x, "gamma": gamma, "beta": beta}, rng=rng, mode="projection")


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_bn_matches_torch(shape, train, dtype, rng, torch):
    x, gamma, beta, rm, rv = _bn_inputs(rng, shape, dtype)
    y, cache = batch_norm_forward(x, gamma, beta, train=train, running_mean=rm, running_var=rv, eps=1e-5)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dgamma, dbeta = batch_norm_backward(dy, cache)
    to_t = nhwc_to_nchw if x.ndim == 4 else np.asarray
    back = nchw_to_nhwc if x.ndim == 4 else np.asarray
    xt = t(torch, to_t(x), grad=True)
    gt, bt = t(torch, gamma, grad=True), t(torch, beta, grad=True)
    rmt, rvt = t(torch, rm.copy()), t(torch, rv.copy())
    yt = torch.nn.functional.batch_norm(xt, rmt, rvt, gt, bt, training=train, momentum=0.1, eps=1e-5)
    yt.backward(t(torch, to_t(dy)))
    assert_close(y, back(n(yt)), dtype=dtype, what="y")
    # dx is a difference of terms of size |dy·gamma/std|: with two values per channel it nearly cancels
    terms = float(np.max(np.abs(dy))) * float(np.max(np.abs(gamma * cache.inv_std)))
    assert_close(dx, back(n(xt.grad)), dtype=dtype, scale=max(terms, float(np.abs(dx).max())), what="dx")
    assert_close(dgamma, n(gt.grad), dtype=dtype, what="dgamma")
    assert_close(dbeta, n(bt.grad), dtype=dtype, what="dbeta")
    if train:
        # PyTorch's running update uses the unbiased variance; check the cache lets a layer do the same
        m = cache.count
        assert_close(0.9 * rm + 0.1 * cache.mean, n(rmt), dtype=dtype, what="running_mean")
        assert_close(0.9 * rv + 0.1 * cache.var * m / (m - 1), n(rvt), dtype=dtype, what="running_var")


def test_bn_refuses_single_value_per_channel_in_training():
    x = np.ones((1, 3))
    with pytest.raises(ShapeError, match="more than one value per channel"):
        batch_norm_forward(x, np.ones(3), np.zeros(3), train=True)
    y, _ = batch_norm_forward(x, np.ones(3), np.zeros(3), train=False, running_mean=np.zeros(3), running_var=np.ones(3))
    assert y.shape == (1, 3)


def test_bn_eval_needs_running_statistics():
    with pytest.raises(ConfigError, match="running_mean"):
        batch_norm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3), train=False)
