"""BN + ReLU as one pass: a ReLU that alone reads a BN's output runs inside the BN's forward and
backward passes (``Net.relu_fusion``) — the same numbers to the bit as the two layers apart, in
training and evaluation, with the compiled kernels and with NumPy's."""
import numpy as np
import pytest

from convnet import zoo
from convnet.layers import Add, BatchNorm, Conv2D, Dense, Flatten, GlobalAvgPool, ReLU
from convnet.net import Net
from convnet.pattern import parse

RNG = np.random.default_rng(21)


def step(net, x, dy_seed=0, *, train=True):
    """Forward (training or evaluation with caches) and backward: the output, the input gradient,
    every parameter gradient and BN's running statistics."""
    y = net.forward(x, train=train)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(y.dtype)
    dx = net.backward(dy)
    grads = {name: g.copy() for name, _, g in net.named_parameters()}
    state = {name: v.copy() for name, v in net.named_state()}
    return y.copy(), dx, grads, state


def pair(build):
    fused, plain = build(), build()
    plain.fuse = False
    return fused, plain


def assert_same(a, b):
    ya, dxa, ga, sa = a
    yb, dxb, gb, sb = b
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(dxa, dxb)
    assert ga.keys() == gb.keys() and sa.keys() == sb.keys()
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k], err_msg=k)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def resnet():
    net = zoo.get("resnet20_cifar").build(rng=np.random.default_rng(0))
    rng = np.random.default_rng(5)
    for node in net.nodes:  # γ, β away from 1, 0, so that some outputs are clipped by the ReLU
        if isinstance(node.layer, BatchNorm):
            c = node.layer.params["gamma"].shape[0]
            node.layer.params["gamma"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
            node.layer.params["beta"] = rng.normal(0, 0.5, c).astype(np.float32)
    return net


@pytest.mark.parametrize("numba", ["1", "0"], ids=["compiled", "numpy"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_resnet_step_bitwise_equal_fused_and_apart(monkeypatch, numba, train):
    monkeypatch.setenv("CONVNET_NUMBA", numba)
    fused, plain = pair(resnet)
    assert len(fused.relu_fusion()) == 10 and plain.relu_fusion() == {}
    x = RNG.standard_normal((3, 32, 32, 3)).astype(np.float32)
    for seed in range(2):  # twice: the second step starts from the updated running statistics
        assert_same(step(fused, x, seed, train=train), step(plain, x, seed, train=train))


def test_float64_dense_bn_relu():
    """(N, D) batch norm (after a Dense layer) in float64, non-square conv before it."""
    def build():
        f8 = "float64"
        net = Net.sequential([Conv2D(4, (3, 2), dtype=f8), BatchNorm(dtype=f8), ReLU(), Flatten(), Dense(7, dtype=f8),
                              BatchNorm(dtype=f8), ReLU(), Dense(2, dtype=f8)], input_shape=(6, 5, 3))
        return net.build(rng=np.random.default_rng(1))
    fused, plain = pair(build)
    assert len(fused.relu_fusion()) == 2
    x = RNG.standard_normal((5, 6, 5, 3))
    assert_same(step(fused, x), step(plain, x))


def test_no_fusion_where_the_bn_output_is_read_twice_is_the_output_or_observed():
    net = Net(input_shape=(6, 6, 4))
    net.add(Conv2D(4, 3, padding=1), name="conv")
    net.add(BatchNorm(), name="bn")
    net.add(ReLU(), name="relu")
    net.add(Add(), inputs=["bn", "relu"], name="add")
    net.add(GlobalAvgPool(), name="gap")
    net.build(rng=np.random.default_rng(0))
    assert net.relu_fusion() == {}
    tail = Net(input_shape=(6, 6, 4))
    tail.add(Conv2D(4, 3, padding=1), name="conv")
    tail.add(BatchNorm(), name="bn")
    tail.build(rng=np.random.default_rng(0))
    assert tail.relu_fusion() == {}
    simple = parse("INPUT[6x6x4] -> CONV3-4 -> BN -> RELU -> GAP").build(rng=np.random.default_rng(0))
    seen = {}
    simple.forward(RNG.standard_normal((2, 6, 6, 4)).astype(np.float32), train=True,
                   observer=lambda name, y: seen.setdefault(name, y.copy()))
    bn, relu = simple.layers[1].name, simple.layers[2].name
    assert seen[bn].min() < 0 and seen[relu].min() >= 0  # each node's own output


def test_fused_relu_keeps_no_cache_and_a_later_unfused_pass_works():
    net = parse("INPUT[6x6x4] -> CONV3-4 -> BN -> RELU -> GAP").build(rng=np.random.default_rng(0))
    x = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
    relu = net.layers[2]
    net.forward(x, train=True, observer=lambda name, y: None)  # unfused: the ReLU keeps its output
    assert relu._cache is not None
    y = net.forward(x, train=True)  # fused: it is dropped
    assert relu._cache is None
    net.backward(np.ones_like(y))
    net.fuse = False
    y2 = net.forward(x, train=True)
    np.testing.assert_array_equal(y, y2)


class Doubled(ReLU):
    """A ReLU subclass computing something else: never run by the BN before it."""

    def forward(self, x, *, train=False, keep_cache=True, inplace=False):
        return 2 * super().forward(x, train=train, keep_cache=keep_cache)

    def backward(self, dy, *, inplace=False):
        return super().backward(2 * dy)


def test_a_relu_subclass_that_redefines_forward_is_not_fused():
    assert ReLU.is_relu and not Doubled.is_relu and BatchNorm.applies_relu
    net = Net.sequential([Conv2D(4, 3, padding=1), BatchNorm(), Doubled(), GlobalAvgPool()], input_shape=(5, 5, 2))
    net.build(rng=np.random.default_rng(0))
    assert net.relu_fusion() == {}
    x = RNG.standard_normal((2, 5, 5, 2)).astype(np.float32)
    seen = {}
    y = net.forward(x, observer=lambda name, a: seen.setdefault(name, a.copy()))
    np.testing.assert_allclose(net.forward(x), y)
    np.testing.assert_allclose(seen[net.layers[2].name], 2 * np.maximum(seen[net.layers[1].name], 0))
