"""Pointwise ops for issue 16: sigmoid, clip (ReLU6), identity, the per-channel affine map, and
Gemm's alpha/beta on dense — the reference loops, finite differences with a random dy, PyTorch,
and the boundary rules of clip's gradient (torch.clamp vs torch.nn.ReLU6)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, DTypeError, ShapeError
from convnet.ops import reference as ref
from convnet.ops.activations import (
    clip,
    clip_backward,
    clip_forward,
    identity_backward,
    identity_forward,
    relu6_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
)
from convnet.ops.dense import dense_backward, dense_forward
from convnet.ops.norm import channel_affine_backward, channel_affine_forward
from oracle import assert_close, gradcheck, n, t

DTYPES = [np.float64, np.float32]
DT_IDS = ["f64", "f32"]


# -- sigmoid ----------------------------------------------------------------------------------------
def test_sigmoid_matches_reference_and_finite_differences(rng):
    x = rng.standard_normal((2, 3, 4, 2)) * 4
    y, cache = sigmoid_forward(x)
    assert_close(y, ref.sigmoid(x))
    assert cache is y
    np.testing.assert_array_equal(sigmoid(x), y)
    assert_close(sigmoid(x.astype(np.float32)), ref.sigmoid(x), dtype=np.float32)
    gradcheck(lambda x: sigmoid_forward(x)[0], lambda dy, x: {"x": sigmoid_backward(dy, sigmoid_forward(x)[1])},
              {"x": x[:1, :2]}, rng=rng, mode="full")
    gradcheck(lambda x: sigmoid_forward(x)[0], lambda dy, x: {"x": sigmoid_backward(dy, sigmoid_forward(x)[1])},
              {"x": x}, rng=rng, mode="projection")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_sigmoid_never_overflows(dtype):
    x = np.array([[-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4]], dtype=dtype)
    with np.errstate(over="raise"):
        y = sigmoid(x)
    assert y.dtype == dtype and np.all(np.isfinite(y))
    assert y[0, 0] == 0 and y[0, 3] == 0.5 and y[0, -1] == 1
    assert 0 < y[0, 2] < 1e-12  # exp(-30), not 0: the small side keeps its precision


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_sigmoid_matches_torch(dtype, rng, torch):
    x = (rng.standard_normal((3, 4, 5, 2)) * 6).astype(dtype)
    y, cache = sigmoid_forward(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = t(torch, x, grad=True)
    yt = torch.sigmoid(xt)
    yt.backward(t(torch, dy))
    assert_close(y, n(yt), dtype=dtype)
    assert_close(sigmoid_backward(dy, cache), n(xt.grad), dtype=dtype)


# -- clip -------------------------------------------------------------------------------------------
BOUNDS = [(-1.0, 1.0), (0.0, 6.0), (None, 0.5), (-0.5, None), (None, None), (0.3, 0.3)]


@pytest.mark.parametrize("bounds", BOUNDS, ids=str)
def test_clip_matches_reference_and_finite_differences(bounds, rng):
    lo, hi = bounds
    x = rng.standard_normal((2, 3, 3, 2)) * 3
    for v in (lo, hi):  # keep the differences away from the kinks
        if v is not None:
            x[np.abs(x - v) < 1e-3] += 0.01
    y, mask = clip_forward(x, min=lo, max=hi)
    assert_close(y, ref.clip(x, lo, hi))
    np.testing.assert_array_equal(clip(x, min=lo, max=hi), y)
    assert mask.dtype == bool and y is not x
    gradcheck(lambda x: clip_forward(x, min=lo, max=hi)[0],
              lambda dy, x: {"x": clip_backward(dy, clip_forward(x, min=lo, max=hi)[1])},
              {"x": x[:1]}, rng=rng, mode="full")


def test_clip_gradient_at_the_bounds():
    """Inclusive (torch.clamp): dy passes at x == min and x == max; exclusive (ReLU6, Hardtanh): 0."""
    x = np.array([[-2.0, 0.0, 3.0, 6.0, 7.0, np.nan]])
    dy = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    y, inclusive = clip_forward(x, min=0.0, max=6.0)
    np.testing.assert_array_equal(y, [[0.0, 0.0, 3.0, 6.0, 6.0, np.nan]])
    np.testing.assert_array_equal(clip_backward(dy, inclusive), [[0.0, 2.0, 3.0, 4.0, 0.0, 0.0]])
    y6, exclusive = relu6_forward(x)
    np.testing.assert_array_equal(y6, y)
    np.testing.assert_array_equal(clip_backward(dy, exclusive), [[0.0, 0.0, 3.0, 0.0, 0.0, 0.0]])
    _, unbounded = clip_forward(x)
    np.testing.assert_array_equal(clip_backward(dy, unbounded), [[1.0, 2.0, 3.0, 4.0, 5.0, 0.0]])


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_clip_and_relu6_match_torch_at_the_bounds_too(dtype, rng, torch):
    x = (rng.standard_normal((2, 3, 4, 5)) * 4).astype(dtype)
    x.reshape(-1)[:6] = [0, 6, -1, 1, 0.5, -0.5]  # exactly on the bounds below
    dy = rng.standard_normal(x.shape).astype(dtype)
    for (lo, hi), ours, theirs in (
        ((-1.0, 1.0), lambda x: clip_forward(x, min=-1.0, max=1.0), lambda xt: torch.clamp(xt, -1.0, 1.0)),
        ((None, 0.5), lambda x: clip_forward(x, max=0.5), lambda xt: torch.clamp(xt, max=0.5)),
        ((-0.5, None), lambda x: clip_forward(x, min=-0.5), lambda xt: torch.clamp(xt, min=-0.5)),
        ((0.0, 6.0), relu6_forward, lambda xt: torch.nn.functional.relu6(xt)),
        ((-1.0, 1.0), lambda x: clip_forward(x, min=-1.0, max=1.0, inclusive=False),
         lambda xt: torch.nn.functional.hardtanh(xt, -1.0, 1.0)),
    ):
        y, mask = ours(x)
        xt = t(torch, x, grad=True)
        yt = theirs(xt)
        yt.backward(t(torch, dy))
        np.testing.assert_array_equal(y, n(yt))
        np.testing.assert_array_equal(clip_backward(dy, mask), n(xt.grad))


@pytest.mark.parametrize("lo, hi, match", [
    (1.0, 0.0, "greater than"),
    (float("nan"), 1.0, "`min`"),
    (0.0, "6", "`max`"),
    (True, None, "`min`"),
])
def test_clip_bad_bounds(lo, hi, match):
    with pytest.raises(ConfigError, match=match):
        clip(np.zeros((1, 2)), min=lo, max=hi)


# -- identity ---------------------------------------------------------------------------------------
def test_identity_is_the_same_array_both_ways(rng):
    x = rng.standard_normal((2, 3))
    y, cache = identity_forward(x)
    assert y is x and cache is None
    dy = rng.standard_normal((2, 3))
    assert identity_backward(dy, cache) is dy
    with pytest.raises(DTypeError):
        identity_forward(np.zeros(3, dtype=int))


# -- per-channel affine -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 5)], ids=["nhwc", "vectors"])
def test_channel_affine_matches_definition_and_finite_differences(shape, rng):
    x = rng.standard_normal(shape)
    scale, shift = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    y, _ = channel_affine_forward(x, scale, shift)
    expected = np.empty_like(x)
    for idx in np.ndindex(*shape):
        expected[idx] = x[idx] * scale[idx[-1]] + shift[idx[-1]]
    assert_close(y, expected)

    def f(x, scale, shift):
        return channel_affine_forward(x, scale, shift)[0]

    def vjp(dy, x, scale, shift):
        dx, ds, dt = channel_affine_backward(dy, channel_affine_forward(x, scale, shift)[1])
        return {"x": dx, "scale": ds, "shift": dt}

    gradcheck(f, vjp, {"x": x, "scale": scale, "shift": shift}, rng=rng, mode="auto")
    y0, _ = channel_affine_forward(x, scale)
    assert_close(y0, x * scale)


@pytest.mark.oracle
def test_channel_affine_equals_torch_batch_norm_in_eval(rng, torch):
    """BatchNorm at inference is the affine map scale = γ/√(var+ε), shift = β − mean·scale."""
    c = 6
    bn = torch.nn.BatchNorm2d(c).double().eval()
    with torch.no_grad():
        bn.weight.copy_(t(torch, rng.standard_normal(c)))
        bn.bias.copy_(t(torch, rng.standard_normal(c)))
        bn.running_mean.copy_(t(torch, rng.standard_normal(c)))
        bn.running_var.copy_(t(torch, rng.uniform(0.5, 2, c)))
    scale = n(bn.weight) / np.sqrt(n(bn.running_var) + bn.eps)
    shift = n(bn.bias) - n(bn.running_mean) * scale
    x = rng.standard_normal((2, 4, 3, c))
    xt = t(torch, x.transpose(0, 3, 1, 2), grad=True)
    yt = bn(xt)
    dy = rng.standard_normal(x.shape)
    yt.backward(t(torch, dy.transpose(0, 3, 1, 2)))
    y, cache = channel_affine_forward(x, scale, shift)
    assert_close(y, n(yt).transpose(0, 2, 3, 1))
    assert_close(channel_affine_backward(dy, cache)[0], n(xt.grad).transpose(0, 2, 3, 1))


def test_channel_affine_checks():
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        channel_affine_forward(np.zeros((2, 3)), np.ones(4))
    with pytest.raises(DTypeError):
        channel_affine_forward(np.zeros((2, 3)), np.ones(3, dtype=np.float32))


# -- dense with alpha and beta ------------------------------------------------------------------------
@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (0.5, 2.0), (-1.5, 0.0), (0.0, 3.0)])
def test_dense_alpha_beta(alpha, beta, rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    y, _ = dense_forward(x, w, b, alpha=alpha, beta=beta)
    assert_close(y, alpha * ref.dense(x, w) + beta * b)

    def f(x, w, b):
        return dense_forward(x, w, b, alpha=alpha, beta=beta)[0]

    def vjp(dy, x, w, b):
        dx, dw, db = dense_backward(dy, dense_forward(x, w, b, alpha=alpha, beta=beta)[1])
        return {"x": dx, "w": dw, "b": db}

    gradcheck(f, vjp, {"x": x, "w": w, "b": b}, rng=rng, mode="full")


def test_dense_defaults_are_unchanged_to_the_bit(rng):
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((6, 7), (7, 4), (4,)))
    y, cache = dense_forward(x, w, b)
    np.testing.assert_array_equal(y, x @ w + b)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = dense_backward(dy, cache)
    np.testing.assert_array_equal(dx, dy @ w.T)
    np.testing.assert_array_equal(dw, x.T @ dy)
    np.testing.assert_array_equal(db, dy.sum(axis=0))


@pytest.mark.oracle
def test_dense_alpha_beta_match_torch_addmm(rng, torch):
    """ONNX Gemm = torch.addmm(beta·b, x, w, alpha=alpha) (beta given to the bias here: addmm's beta
    scales its input)."""
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    alpha, beta = 0.7, -1.3
    y, cache = dense_forward(x, w, b, alpha=alpha, beta=beta)
    xt, wt, bt = (t(torch, a, grad=True) for a in (x, w, b))
    yt = torch.addmm(bt.expand(4, 3), xt, wt, beta=beta, alpha=alpha)
    dy = rng.standard_normal(y.shape)
    yt.backward(t(torch, dy))
    assert_close(y, n(yt))
    for ours, theirs in zip(dense_backward(dy, cache), (xt, wt, bt)):
        assert_close(ours, n(theirs.grad))


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), "1", True])
def test_dense_bad_scales(bad):
    with pytest.raises(ConfigError, match="alpha"):
        dense_forward(np.zeros((1, 2)), np.zeros((2, 2)), alpha=bad)
    with pytest.raises(ConfigError, match="beta"):
        dense_forward(np.zeros((1, 2)), np.zeros((2, 2)), beta=bad)


@settings(max_examples=40, deadline=None)
@given(st.floats(-5, 5), st.floats(-5, 5), st.integers(0, 2**31))
def test_property_pointwise_ops_are_their_own_chain_rule(lo, span, seed):
    """For any bounds and input: clip's dx is dy where the mask is, sigmoid's matches the
    directional derivative, and both ops leave their inputs unchanged."""
    hi = lo + abs(span)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4)) * 4
    x0 = x.copy()
    y, mask = clip_forward(x, min=lo, max=hi)
    assert np.all((y >= lo) & (y <= hi))
    np.testing.assert_array_equal(mask, (x >= lo) & (x <= hi))
    ys, cache = sigmoid_forward(x)
    dy, v = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    eps = 1e-6
    numeric = (np.sum(dy * sigmoid(x + eps * v)) - np.sum(dy * sigmoid(x - eps * v))) / (2 * eps)
    assert abs(numeric - np.sum(sigmoid_backward(dy, cache) * v)) <= 1e-6 * (np.abs(dy * v).sum() + 1)
    np.testing.assert_array_equal(x, x0)
