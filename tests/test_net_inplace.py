"""In-place ReLU and ADD inside a Net: only on arrays no one else reads; same bits as out of place."""
import numpy as np
import pytest

from convnet.layers.activation import ReLU
from convnet.layers.conv import Conv2D
from convnet.layers.merge import Add
from convnet.layers.norm import BatchNorm
from convnet.net import Net
from convnet.zoo.blocks import basic_block


def _branchy_net():
    """A residual stage, plus a BN output read by two nodes (a ReLU and an ADD) and a ReLU on the
    caller's input: the cases where in-place must and must not happen."""
    net = Net(input_shape=(6, 5, 3))
    r0 = net.add(ReLU(name="relu_in"), inputs=["input"])  # reads the caller's x: never in place
    c = net.add(Conv2D(8, (3, 2), padding="same", name="conv"), inputs=[r0])
    b = net.add(BatchNorm(name="bn"), inputs=[c])
    r1 = net.add(ReLU(name="relu_shared"), inputs=[b])  # bn is also read by "add_shared"
    a = net.add(Add(name="add_shared"), inputs=[r1, b])
    out = basic_block(net, a, 8, 8, stride=1, prefix="block_")
    r2 = net.add(ReLU(name="relu_out"), inputs=[out])
    # a fan-out into two CONVs: backward sums their private input gradients in place
    left = net.add(Conv2D(4, 1, name="conv_l"), inputs=[r2])
    right = net.add(Conv2D(4, 1, name="conv_r"), inputs=[r2])
    net.add(Add(name="add_lr"), inputs=[left, right])
    return net


def _run(net, x, dy):
    out = net.forward(x, train=True)
    dx = net.backward(dy)
    grads = {k: g.copy() for k, g in ((f"{layer.name}.{n}", g) for layer in net.layers for n, g in layer.grads.items())}
    return out, dx, grads


@pytest.mark.parametrize("kernels_on", ["1", "0"])
def test_inplace_gives_the_same_bits_and_leaves_shared_arrays_alone(monkeypatch, kernels_on):
    monkeypatch.setenv("CONVNET_NUMBA", kernels_on)
    rng = np.random.default_rng(0)
    net = _branchy_net()
    net.build((6, 5, 3), rng=np.random.default_rng(1))
    net.fuse = False  # else the BN runs block_relu1 (tests/test_net_fusion.py)
    x = rng.standard_normal((4, 6, 5, 3)).astype(np.float32)
    x_before = x.copy()
    calls, back = {}, {}
    for layer in net.layers:
        if layer.inplace:
            orig, orig_back = layer.forward, layer.backward

            def spy(inp, *, _orig=orig, _name=layer.name, **kw):
                calls[_name] = kw.get("inplace")
                return _orig(inp, **kw)

            def spy_back(dy, *, _orig=orig_back, _name=layer.name, **kw):
                back[_name] = kw.get("inplace", False)
                return _orig(dy, **kw)

            layer.forward, layer.backward = spy, spy_back
    out_shape = net.output_shape()
    dy = rng.standard_normal((4, *out_shape)).astype(np.float32)
    state = {k: v.copy() for layer in net.layers for k, v in layer.state.items()}
    dy_before = dy.copy()
    got = _run(net, x, dy)
    np.testing.assert_array_equal(x, x_before)  # the caller's batch is untouched
    np.testing.assert_array_equal(dy, dy_before)  # and so is the caller's gradient
    # backward: a ReLU overwrites a gradient only a CONV / ReLU made for it alone
    # (relu_out: the sum of conv_l's and conv_r's input gradients, made in conv_r's array)
    assert back == {"add_lr": False, "relu_out": True, "block_relu2": True, "block_add": False, "block_relu1": True,
                    "add_shared": False, "relu_shared": False, "relu_in": True}
    assert calls["add_lr"] == [True, True]  # two CONV outputs read by it alone
    assert calls["relu_in"] is False and calls["relu_shared"] is False and calls["add_shared"] == [False, False]
    assert calls["block_relu1"] is True  # the BN output before it
    assert calls["block_add"] == [True, False]  # bn2's output; the shortcut is also read by block_conv1
    assert calls["block_relu2"] is True  # the ADD output before it
    assert calls["relu_out"] is False  # a ReLU's output (its cache holds it)
    net.inplace = False
    for layer in net.layers:  # the same running statistics before the second pass
        for k in layer.state:
            layer.state[k] = state[k].copy()
    want = _run(net, x, dy)
    assert all(v is None for v in calls.values())  # net.inplace = False: the keyword is not passed
    assert got[0].tobytes() == want[0].tobytes()  # the same bits, signed zeros included
    assert got[1].tobytes() == want[1].tobytes()
    assert got[2].keys() == want[2].keys()
    for k in got[2]:
        assert got[2][k].tobytes() == want[2][k].tobytes(), k


def test_no_inplace_with_an_observer():
    net = Net.sequential([Conv2D(4, 3, padding=1), BatchNorm(), ReLU()], input_shape=(5, 5, 2))
    net.add(ReLU(name="top"))
    x = np.random.default_rng(2).standard_normal((2, 5, 5, 2)).astype(np.float32)
    seen = {}
    net.forward(x, observer=lambda name, y: seen.__setitem__(name, y))
    bn = next(layer.name for layer in net.layers if layer.kind == "BN")
    assert (seen[bn] < 0).any()  # the BN output the observer was shown was not rectified afterwards


def test_layer_level_inplace():
    x = np.array([[-1.0, 2.0], [3.0, -4.0]], dtype=np.float32)
    y = ReLU().forward(x.copy(), inplace=False)
    xi = x.copy()
    yi = ReLU().forward(xi, inplace=True)
    assert yi is xi and np.array_equal(yi, y)
    a, b = np.ones((2, 2, 2, 1)), np.full((2, 2, 2, 1), 2.0)
    add = Add()
    out = add.forward([a, b], inplace=[False, True])
    assert out is b and np.all(b == 3.0) and np.all(a == 1.0)


@pytest.mark.parametrize("kernels_on", ["1", "0"])
def test_signed_zeros_agree_in_and_out_of_place(monkeypatch, kernels_on):
    """-0.0 into a ReLU (a CONV with -0.0 weights and bias): the same bits either way."""
    monkeypatch.setenv("CONVNET_NUMBA", kernels_on)
    outs = []
    for inplace in (True, False):
        net = Net.sequential([Conv2D(8, 3, padding=1), ReLU()], input_shape=(4, 5, 2))
        net.build((4, 5, 2), rng=np.random.default_rng(0))
        conv = net.layers[0]
        conv.params["w"][...] = -0.0
        conv.params["b"][...] = -0.0
        net.inplace = inplace
        y = net.forward(np.ones((2, 4, 5, 2), dtype=np.float32), train=True)
        dx = net.backward(np.full(y.shape, -0.0, dtype=np.float32))
        outs.append((y.tobytes(), dx.tobytes()))
    assert outs[0] == outs[1]
