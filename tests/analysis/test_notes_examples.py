"""The CS231n notes' worked examples (../shared/seeds), as tests.

The notes index volumes as ``X[x, y, d]`` with ``x`` along the width and ``y`` along
the height.  convnet is NHWC, so ``X_notes[x, y, :]`` (a depth column) is
``x_nhwc[0, y, x, :]``, and a notes filter ``W0[x, y, d]`` is ``w[y, x, d, 0]`` (HWIO).
"""
from __future__ import annotations

import numpy as np
import pytest

from convnet.errors import GeometryError
from convnet.ops.conv import conv2d_forward
from convnet.ops.geometry import conv_geometry, pool_geometry
from convnet.ops.im2col import im2col, pad_input
from convnet.ops.pool import max_pool2d


def notes_to_nhwc(x_notes):
    """``X[x, y, d]`` (width, height, depth) -> ``(1, H, W, D)``."""
    return np.ascontiguousarray(np.asarray(x_notes).transpose(1, 0, 2))[None]


def notes_filters_to_hwio(filters):
    """A list of notes filters ``W[x, y, d]`` -> HWIO ``(F, F, D, K)``."""
    return np.stack([np.asarray(f).transpose(1, 0, 2) for f in filters], axis=-1)


def test_convolution_demo_5x5x3_two_filters_stride2_pad1(rng):
    """The animated demo: W1=5, D1=3, K=2, F=3, S=2, P=1 -> a 3×3×2 output volume."""
    x = rng.integers(0, 3, size=(1, 5, 5, 3)).astype(np.float64)  # the demo uses small integers
    w = rng.integers(-1, 2, size=(3, 3, 3, 2)).astype(np.float64)
    b = np.array([1.0, 0.0])  # the demo's biases b0 = 1, b1 = 0
    y, _ = conv2d_forward(x, w, b, stride=2, padding=1)
    assert y.shape == (1, 3, 3, 2)
    xpad = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    for i in range(3):
        for j in range(3):
            window = xpad[2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :]
            for k in range(2):
                # "each element is computed by elementwise multiplying the highlighted input with the filter,
                # summing it up, and then offsetting the result by the bias"
                assert y[0, i, j, k] == np.sum(window * w[:, :, :, k]) + b[k]


@pytest.mark.parametrize("stride, out", [(1, 5), (2, 3)])
def test_7x7_input_3x3_filter_pad0(stride, out):
    g = conv_geometry((7, 7), (3, 3), stride=stride, padding=0)
    assert g.out_hw == (out, out)
    y, _ = conv2d_forward(np.ones((1, 7, 7, 1)), np.ones((3, 3, 1, 1)), stride=stride)
    assert y.shape == (1, out, out, 1)


def test_7x7_input_3x3_filter_stride3_does_not_fit():
    """(7 - 3 + 0)/3 + 1 = 2.33: "not an integer, indicating that the neurons don't fit"."""
    with pytest.raises(GeometryError) as info:
        conv2d_forward(np.ones((1, 7, 7, 1)), np.ones((3, 3, 1, 1)), stride=3, padding=0)
    msg = str(info.value)
    for part in ("7", "F=3", "S=3", "P=0", "2.33"):
        assert part in msg, msg


def test_32x32x3_ten_5x5_filters_pad2():
    """Input 32×32×3, ten 5×5 filters, stride 1, pad 2 -> 32×32×10 with 760 parameters."""
    x = np.zeros((1, 32, 32, 3), dtype=np.float32)
    w = np.zeros((5, 5, 3, 10), dtype=np.float32)
    b = np.zeros(10, dtype=np.float32)
    y, _ = conv2d_forward(x, w, b, stride=1, padding=2)
    assert y.shape == (1, 32, 32, 10)
    assert w.size + b.size == 760  # (5·5·3 + 1) · 10


def test_32x32x3_conv2d_layer_has_760_parameters():
    layers = pytest.importorskip("convnet.layers")
    if not hasattr(layers, "Conv2D"):
        pytest.skip("convnet.layers.Conv2D not written yet")
    layer = layers.Conv2D(10, 5, stride=1, padding=2)
    layer.build((32, 32, 3), rng=np.random.default_rng(0))
    assert layer.output_shape((32, 32, 3)) == (32, 32, 10)
    assert layer.num_params() == 760


def test_alexnet_conv1_and_its_im2col_matrix():
    """227×227×3, 96 filters 11×11 at stride 4 -> 55×55×96; im2col is (3025, 363) (here NHWC rows)."""
    g = conv_geometry((227, 227), (11, 11), stride=4, padding=0)
    assert g.out_hw == (55, 55)
    x = np.random.default_rng(0).standard_normal((1, 227, 227, 3)).astype(np.float32)
    cols = im2col(pad_input(x, g), g)
    assert cols.shape == (3025, 363)
    # row r is the receptive field of output (r // 55, r % 55) stretched out (kh, kw, C order)
    r = 55 * 7 + 20
    np.testing.assert_array_equal(cols[r], x[0, 4 * 7 : 4 * 7 + 11, 4 * 20 : 4 * 20 + 11, :].reshape(-1))
    w = np.zeros((11, 11, 3, 96), dtype=np.float32)
    y, _ = conv2d_forward(x, w, stride=4)
    assert y.shape == (1, 55, 55, 96)


def test_numpy_example_11x11x4_f5_s2(rng):
    """The notes' numpy walk-through: X.shape (11, 11, 4), F=5, S=2, P=0 -> a 4×4 activation map.

    V[0,0,0] = np.sum(X[:5,:5,:] * W0) + b0,  V[1,0,0] = np.sum(X[2:7,:5,:] * W0) + b0,
    V[2,0,0] = np.sum(X[4:9,:5,:] * W0) + b0, V[3,0,0] = np.sum(X[6:11,:5,:] * W0) + b0,
    V[0,1,1] = np.sum(X[:5,2:7,:] * W1) + b1 (going along y), V[2,3,1] likewise.
    """
    X = rng.standard_normal((11, 11, 4))  # notes layout X[x, y, d]
    W0, W1 = rng.standard_normal((5, 5, 4)), rng.standard_normal((5, 5, 4))
    b0, b1 = 0.5, -0.25
    y, _ = conv2d_forward(notes_to_nhwc(X), notes_filters_to_hwio([W0, W1]), np.array([b0, b1]), stride=2)
    assert y.shape == (1, 4, 4, 2)

    def V(x, yy, d):  # the notes' V[x, y, d] in NHWC
        return y[0, yy, x, d]

    assert V(0, 0, 0) == pytest.approx(np.sum(X[:5, :5, :] * W0) + b0, rel=1e-12)
    assert V(1, 0, 0) == pytest.approx(np.sum(X[2:7, :5, :] * W0) + b0, rel=1e-12)
    assert V(2, 0, 0) == pytest.approx(np.sum(X[4:9, :5, :] * W0) + b0, rel=1e-12)
    assert V(3, 0, 0) == pytest.approx(np.sum(X[6:11, :5, :] * W0) + b0, rel=1e-12)
    assert V(0, 0, 1) == pytest.approx(np.sum(X[:5, :5, :] * W1) + b1, rel=1e-12)
    assert V(0, 1, 1) == pytest.approx(np.sum(X[:5, 2:7, :] * W1) + b1, rel=1e-12)
    assert V(2, 3, 1) == pytest.approx(np.sum(X[4:9, 6:11, :] * W1) + b1, rel=1e-12)
    # and every other entry the same way
    for x in range(4):
        for yy in range(4):
            for d, (Wd, bd) in enumerate(((W0, b0), (W1, b1))):
                expected = np.sum(X[2 * x : 2 * x + 5, 2 * yy : 2 * yy + 5, :] * Wd) + bd
                assert V(x, yy, d) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_max_pool_2x2_stride2_224x224x64():
    """"input volume of size [224x224x64] is pooled with filter size 2, stride 2 into [112x112x64]"."""
    x = np.random.default_rng(0).standard_normal((1, 224, 224, 64)).astype(np.float32)
    y = max_pool2d(x, pool_size=2, stride=2)
    assert y.shape == (1, 112, 112, 64)
    np.testing.assert_array_equal(y[0, 5, 7], x[0, 10:12, 14:16].max(axis=(0, 1)))


def test_max_pool_2x2_example_values():
    """The notes' picture: a 4×4 single slice, 2×2 max with stride 2 -> [[6, 8], [3, 4]]."""
    s = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float64)
    y = max_pool2d(s[None, :, :, None], pool_size=2, stride=2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8], [3, 4]])


@pytest.mark.parametrize("size, out", [(55, 27), (27, 13), (13, 6)])
def test_overlapping_pooling_3x3_stride2(size, out):
    """AlexNet's overlapping pooling F=3, S=2: 55 -> 27 -> 13 -> 6."""
    assert pool_geometry((size, size), 3, stride=2).out_hw == (out, out)
    y = max_pool2d(np.zeros((1, size, size, 2), dtype=np.float32), pool_size=3, stride=2)
    assert y.shape == (1, out, out, 2)
