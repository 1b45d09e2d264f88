"""The ops with several inputs and the ones that only move values (issue 16): add, mul (broadcast
per sample), concat on any per-sample axis, flatten, channel shuffle — definitions, finite
differences with a random dy, PyTorch, and their errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, DTypeError, ShapeError
from convnet.ops import reference as ref
from convnet.ops.merge import (
    add_backward,
    add_forward,
    broadcast_shape,
    concat_backward,
    concat_forward,
    mul_backward,
    mul_forward,
)
from convnet.ops.reshape import (
    channel_shuffle_backward,
    channel_shuffle_forward,
    flatten_backward,
    flatten_forward,
)
from oracle import assert_close, gradcheck, n, nchw_to_nhwc, nhwc_to_nchw, t


# -- add --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 4])
def test_add_n_inputs(k, rng):
    xs = [rng.standard_normal((2, 3, 4, 5)) for _ in range(k)]
    y, cache = add_forward(xs)
    assert_close(y, sum(xs))
    dy = rng.standard_normal(y.shape)
    grads = add_backward(dy, cache)
    assert len(grads) == k and all(g is dy for g in grads)


@pytest.mark.parametrize("into", [0, 1])
def test_add_in_place_gives_the_same_bits(into, rng):
    xs = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3)]
    y, _ = add_forward(xs)
    copies = [x.copy() for x in xs]
    yi, _ = add_forward(copies, into=into)
    assert yi is copies[into] and yi.tobytes() == y.tobytes()


def test_add_errors():
    with pytest.raises(ShapeError, match="same shape"):
        add_forward([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ShapeError, match="at least 2"):
        add_forward([np.zeros((2, 3))])
    with pytest.raises(ConfigError, match="into"):
        add_forward([np.zeros((2, 3))] * 2, into=2)
    with pytest.raises(DTypeError, match="same dtype"):
        add_forward([np.zeros((2, 3)), np.zeros((2, 3), dtype=np.float32)])
    with pytest.raises(ShapeError, match="batch size"):
        add_forward([np.zeros((2, 3)), np.zeros((3, 3))])


# -- mul --------------------------------------------------------------------------------------------
SHAPES = [
    [(2, 3, 4, 5), (2, 3, 4, 5)],
    [(2, 3, 4, 5), (2, 5)],  # a squeeze-and-excitation gate
    [(2, 3, 4, 5), (2, 3, 4, 1)],  # a spatial gate
    [(2, 1, 4, 5), (2, 3, 1, 5), (2, 1, 1, 1)],
    [(3, 4), (3, 4), (3, 4)],
]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_mul_matches_definition_and_finite_differences(shapes, rng):
    xs = [rng.standard_normal(s) for s in shapes]
    y, cache = mul_forward(xs)
    rank = max(len(s) for s in shapes)
    expanded = [x.reshape((x.shape[0],) + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
    expected = expanded[0]
    for e in expanded[1:]:
        expected = expected * e
    assert y.shape == expected.shape
    assert_close(y, expected)
    names = [f"x{i}" for i in range(len(xs))]

    def f(**arrays):
        return mul_forward([arrays[k] for k in names])[0]

    def vjp(dy, **arrays):
        grads = mul_backward(dy, mul_forward([arrays[k] for k in names])[1])
        return dict(zip(names, grads))

    gradcheck(f, vjp, dict(zip(names, xs)), rng=rng, mode="auto")


@pytest.mark.oracle
def test_mul_matches_torch_broadcasting(rng, torch):
    x, gate = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 5))
    y, cache = mul_forward([x, gate])
    dy = rng.standard_normal(y.shape)
    xt, gt = t(torch, nhwc_to_nchw(x), grad=True), t(torch, gate, grad=True)
    yt = xt * gt[:, :, None, None]  # the SE block in NCHW
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)))
    dx, dgate = mul_backward(dy, cache)
    assert_close(dx, nchw_to_nhwc(n(xt.grad)))
    assert_close(dgate, n(gt.grad))


def test_mul_errors():
    with pytest.raises(ShapeError, match="do not broadcast"):
        mul_forward([np.zeros((2, 3, 4)), np.zeros((2, 3, 5))])
    with pytest.raises(ShapeError, match="batch size"):
        mul_forward([np.zeros((2, 3)), np.zeros((1, 3))])
    assert broadcast_shape([(4, 5), (5,), (1, 1)]) == (4, 5)


# -- concat -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 3, 1, -3, 2])
def test_concat_any_per_sample_axis(axis, rng):
    a = axis % 4
    shapes = []
    for size in (2, 3, 1):
        s = [2, 3, 4, 5]
        s[a] = size
        shapes.append(tuple(s))
    xs = [rng.standard_normal(s) for s in shapes]
    y, cache = concat_forward(xs, axis=axis)
    assert_close(y, np.concatenate(xs, axis=a))
    names = ["a", "b", "c"]

    def f(**arrays):
        return concat_forward([arrays[k] for k in names], axis=axis)[0]

    def vjp(dy, **arrays):
        grads = concat_backward(dy, concat_forward([arrays[k] for k in names], axis=axis)[1])
        assert all(g.flags.c_contiguous for g in grads)
        return dict(zip(names, grads))

    gradcheck(f, vjp, dict(zip(names, xs)), rng=rng, mode="projection")


def test_concat_errors():
    with pytest.raises(ConfigError, match="batch axis"):
        concat_forward([np.zeros((2, 3))] * 2, axis=0)
    with pytest.raises(ConfigError, match="axis"):
        concat_forward([np.zeros((2, 3))] * 2, axis=2)
    with pytest.raises(ShapeError, match="every axis but axis 3"):
        concat_forward([np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 3, 5))])
    _, cache = concat_forward([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ShapeError, match="7 entries"):
        concat_backward(np.zeros((2, 6)), cache)


# -- flatten ----------------------------------------------------------------------------------------
def test_flatten_is_a_view_in_nhwc_order(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    y, cache = flatten_forward(x)
    assert y.shape == (2, 60) and np.shares_memory(y, x)
    np.testing.assert_array_equal(y[1], [x[1, i, j, c] for i in range(3) for j in range(4) for c in range(5)])
    dy = rng.standard_normal(y.shape)
    dx = flatten_backward(dy, cache)
    assert dx.shape == x.shape and np.shares_memory(dx, dy)
    with pytest.raises(ShapeError, match="forward output's shape"):
        flatten_backward(np.zeros((2, 59)), cache)


# -- channel shuffle --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, groups", [((2, 3, 4, 6), 2), ((2, 3, 4, 6), 3), ((2, 1, 1, 12), 4),
                                           ((3, 8), 2), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), 5)])
def test_channel_shuffle_matches_reference_and_inverts(shape, groups, rng):
    x = rng.standard_normal(shape)
    y, cache = channel_shuffle_forward(x, groups=groups)
    assert_close(y, ref.channel_shuffle(x, groups))
    np.testing.assert_array_equal(channel_shuffle_backward(y, cache), x)  # a permutation: its own inverse's input
    gradcheck(lambda x: channel_shuffle_forward(x, groups=groups)[0],
              lambda dy, x: {"x": channel_shuffle_backward(dy, channel_shuffle_forward(x, groups=groups)[1])},
              {"x": x}, rng=rng, mode="projection")


@pytest.mark.oracle
@pytest.mark.parametrize("groups", [2, 3])
def test_channel_shuffle_matches_torch_and_the_onnx_reshape_transpose(groups, rng, torch):
    x = rng.standard_normal((2, 3, 4, 6))
    y, cache = channel_shuffle_forward(x, groups=groups)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    yt = torch.nn.ChannelShuffle(groups)(xt)
    # what ONNX exporters write: Reshape (N, g, C/g, H, W) -> Transpose(0, 2, 1, 3, 4) -> Reshape
    onnx = xt.reshape(2, groups, 6 // groups, 3, 4).transpose(1, 2).reshape(2, 6, 3, 4)
    dy = rng.standard_normal(y.shape)
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)))
    assert_close(y, nchw_to_nhwc(n(onnx)))
    assert_close(channel_shuffle_backward(dy, cache), nchw_to_nhwc(n(xt.grad)))


def test_channel_shuffle_errors():
    with pytest.raises(ShapeError, match="divisible by groups=4"):
        channel_shuffle_forward(np.zeros((1, 2, 2, 6)), groups=4)
    with pytest.raises(ConfigError, match="positive integer"):
        channel_shuffle_forward(np.zeros((1, 2, 2, 6)), groups=0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**31))
def test_property_shuffle_is_a_permutation_and_mul_broadcasts_like_numpy(groups, per, rank, seed):
    rng = np.random.default_rng(seed)
    lead = tuple(rng.integers(1, 4, size=rank - 1))
    x = rng.standard_normal((2, *lead, groups * per))
    y, cache = channel_shuffle_forward(x, groups=groups)
    np.testing.assert_array_equal(np.sort(y, axis=-1), np.sort(x, axis=-1))
    np.testing.assert_array_equal(channel_shuffle_backward(y, cache), x)
    gate_shape = tuple(d if rng.random() < 0.5 else 1 for d in x.shape[1:])[rng.integers(0, rank):]
    gate = rng.standard_normal((2, *gate_shape))
    yg, mc = mul_forward([x, gate])
    expected = x * gate.reshape((2,) + (1,) * (x.ndim - gate.ndim) + gate.shape[1:])
    np.testing.assert_array_equal(yg, expected)
    dy = rng.standard_normal(yg.shape)
    dx, dgate = mul_backward(dy, mc)
    assert dx.shape == x.shape and dgate.shape == gate.shape
    for g, a in ((dgate, gate), (dx, x)):  # y is linear in each input: <dx_i, x_i> = <dy, y>
        assert abs(np.sum(g * a) - np.sum(dy * yg)) <= 1e-10 * (np.abs(dy * yg).sum() + 1)
