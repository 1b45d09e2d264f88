"""Merge layers Add and Concat."""
import numpy as np
import pytest

from convnet.errors import ShapeError
from convnet.layers.merge import Add, Concat


def test_add_forward_backward():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 3, 3, 4)) for _ in range(3)]
    layer = Add()
    y = layer.forward(xs)
    np.testing.assert_allclose(y, xs[0] + xs[1] + xs[2])
    assert layer.output_shape([(3, 3, 4)] * 3) == (3, 3, 4)
    dy = rng.standard_normal(y.shape)
    dxs = layer.backward(dy)
    assert len(dxs) == 3 and all(d is dy for d in dxs)
    assert y is not xs[0]  # a new array, inputs untouched


def test_add_shape_mismatch():
    with pytest.raises(ShapeError, match="projection shortcut"):
        Add(name="add").output_shape([(4, 4, 8), (4, 4, 16)])
    with pytest.raises(ShapeError, match="at least two"):
        Add().output_shape([(4, 4, 8)])


def test_concat_forward_backward():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 3, 3, c)) for c in (1, 4, 2)]
    layer = Concat()
    y = layer.forward(xs)
    assert y.shape == (2, 3, 3, 7)
    np.testing.assert_array_equal(y[..., 1:5], xs[1])
    assert layer.output_shape([(3, 3, 1), (3, 3, 4), (3, 3, 2)]) == (3, 3, 7)
    dy = rng.standard_normal(y.shape)
    dxs = layer.backward(dy)
    for d, x, s in zip(dxs, xs, (slice(0, 1), slice(1, 5), slice(5, 7))):
        assert d.shape == x.shape and d.flags.c_contiguous
        np.testing.assert_array_equal(d, dy[..., s])


def test_concat_spatial_mismatch():
    with pytest.raises(ShapeError, match="every axis but the channel"):
        Concat(name="cat").output_shape([(4, 4, 8), (2, 2, 8)])


def test_merge_checks_batch_and_built_shapes():
    layer = Add()
    with pytest.raises(ShapeError, match="same batch size"):
        layer.forward([np.zeros((2, 3)), np.zeros((3, 3))])
    layer.forward([np.zeros((2, 3)), np.zeros((2, 3))])
    with pytest.raises(ShapeError, match="built for"):
        layer.forward([np.zeros((2, 4)), np.zeros((2, 4))])
