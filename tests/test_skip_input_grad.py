"""Training skips the gradient with respect to the input images; parameter gradients are unchanged."""
import numpy as np
import pytest

from convnet.layers import Conv2D, Dense, LocallyConnected2D, ReLU
from convnet.net import Net
from convnet.ops.fast import conv2d_backward, conv2d_forward
from convnet.ops.dense import dense_backward, dense_forward


@pytest.mark.parametrize("algorithm, kernel, stride", [("im2col", 7, 2), ("gemm1x1", 1, 1), ("winograd4", 3, 1)])
def test_conv_backward_without_dx_gives_the_same_parameter_gradients(algorithm, kernel, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 11, 11, 3))
    w = rng.standard_normal((kernel, kernel, 3, 4))
    b = rng.standard_normal(4)
    pad = 0 if kernel == 1 else (kernel - 1) // 2
    y, cache = conv2d_forward(x, w, b, stride=stride, padding=pad, algorithm=algorithm)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    none, dw2, db2 = conv2d_backward(dy, cache, need_dx=False)
    assert none is None and dx is not None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


def test_dense_backward_without_dx():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 5)), rng.standard_normal((5, 2)), rng.standard_normal(2)
    y, cache = dense_forward(x, w, b)
    dy = rng.standard_normal(y.shape)
    full = dense_backward(dy, cache)
    part = dense_backward(dy, cache, need_dx=False)
    assert part[0] is None
    np.testing.assert_array_equal(part[1], full[1])


@pytest.mark.parametrize("first", [lambda: Conv2D(4, 3, padding=1), lambda: Dense(6), lambda: LocallyConnected2D(2, 3)])
def test_net_backward_without_input_grad(first):
    rng = np.random.default_rng(2)
    net = Net.sequential([first(), ReLU(), Dense(3)], input_shape=(6, 6, 2)).build(rng=rng)
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    dloss = rng.standard_normal((2, 3)).astype(np.float32)
    net.forward(x, train=True)
    dx = net.backward(dloss)
    full = {n: g.copy() for n, _, g in net.named_parameters()}
    net.forward(x, train=True)
    assert net.backward(dloss, input_grad=False) is None and dx is not None
    for n, _, g in net.named_parameters():
        np.testing.assert_array_equal(g, full[n], err_msg=n)
