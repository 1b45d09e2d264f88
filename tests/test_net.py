"""Net: graph construction, shape inference, forward/backward through branches, inference mode."""
import numpy as np
import pytest

from convnet.errors import ConfigError, ShapeError
from convnet.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool,
    MaxPool2D,
    ReLU,
)
from convnet.layers.merge import Add, Concat
from convnet.net import INPUT, Net


def small_chain(dtype=None):
    return Net.sequential(
        [Conv2D(4, 3, padding=1, dtype=dtype), ReLU(dtype=dtype), MaxPool2D(2, dtype=dtype), Dense(5, dtype=dtype)],
        name="chain",
    )


def branchy(dtype="float64"):
    """conv -> [residual: conv-bn-relu-conv + identity] -> add -> relu -> [1x1 | 3x3] concat -> gap -> fc."""
    net = Net(name="branchy")
    a = net.add(Conv2D(4, 3, padding=1, dtype=dtype, name="stem"))
    net.add(Conv2D(4, 3, padding=1, dtype=dtype, name="r.conv1"))
    net.add(BatchNorm(dtype=dtype, name="r.bn1"))
    net.add(ReLU(dtype=dtype, name="r.relu1"))
    b = net.add(Conv2D(4, 3, padding=1, dtype=dtype, name="r.conv2"))
    net.add(Add(dtype=dtype, name="r.add"), inputs=[b, a])
    x = net.add(ReLU(dtype=dtype, name="r.relu2"))
    p1 = net.add(Conv2D(3, 1, dtype=dtype, name="i/1x1"), inputs=x)
    p2 = net.add(Conv2D(2, 3, padding=1, dtype=dtype, name="i/3x3"), inputs=x)
    net.add(Concat(dtype=dtype, name="i/output"), inputs=[p1, p2])
    net.add(GlobalAvgPool(dtype=dtype, name="gap"))
    net.add(Dense(3, dtype=dtype, name="fc"))
    return net


def test_sequential_names_and_lookup():
    net = small_chain()
    assert [n.name for n in net.nodes] == ["conv1", "relu1", "pool1", "fc1"]
    assert net["fc1"] is net.layers[-1]
    assert "pool1" in net and len(net) == 4
    assert net.is_sequential
    with pytest.raises(KeyError, match="no node named"):
        net["fc9"]


def test_shapes_without_building():
    net = small_chain()
    shapes = net.shapes((8, 8, 3))
    assert shapes == {INPUT: (8, 8, 3), "conv1": (8, 8, 4), "relu1": (8, 8, 4), "pool1": (4, 4, 4), "fc1": (5,)}
    assert net.output_shape((8, 8, 3)) == (5,)
    assert not net.built and all(not layer.params for layer in net.layers)


def test_branch_shapes_and_not_sequential():
    net = branchy()
    assert not net.is_sequential
    s = net.shapes((6, 6, 2))
    assert s["i/output"] == (6, 6, 5) and s["fc"] == (3,)
    assert net.consumers()["r.relu2"] == ["i/1x1", "i/3x3"]


def test_named_parameters_qualified_names():
    net = branchy().build((6, 6, 2), rng=np.random.default_rng(0))
    names = [n for n, _, _ in net.named_parameters()]
    assert names[:4] == ["stem.w", "stem.b", "r.conv1.w", "r.conv1.b"]
    assert "r.bn1.gamma" in names and "r.bn1.beta" in names
    for name, p, g in net.named_parameters():
        assert g is not None and g.shape == p.shape
    assert net.num_params() == sum(p.size for _, p, _ in net.named_parameters())
    assert [n for n, _ in net.named_state()] == ["r.bn1.running_mean", "r.bn1.running_var"]


def test_num_params_from_shapes_equals_built():
    net = branchy()
    unbuilt = net.num_params((6, 6, 2))
    net.build((6, 6, 2))
    assert unbuilt == net.num_params()


def test_add_errors():
    net = Net()
    net.add(ReLU(name="a"))
    with pytest.raises(ConfigError, match="already taken"):
        net.add(ReLU(name="a"))
    with pytest.raises(ConfigError, match="not a node"):
        net.add(ReLU(), inputs="nope")
    with pytest.raises(ConfigError, match="at least two inputs"):
        net.add(Add(), inputs="a")
    with pytest.raises(ConfigError, match="exactly one input"):
        net.add(ReLU(), inputs=["a", INPUT])
    layer = ReLU()
    net.add(layer)
    with pytest.raises(ConfigError, match="already in the net"):
        net.add(layer)


def test_dangling_node_is_refused_at_build():
    net = Net()
    net.add(ReLU(name="a"))
    net.add(ReLU(name="b"), inputs=INPUT)
    with pytest.raises(ConfigError, match="do not lead to the output"):
        net.build((4,))


def test_shape_error_names_the_layer():
    net = Net.sequential([Conv2D(4, 5), Conv2D(4, 5)])
    with pytest.raises(Exception, match="conv2"):
        net.shapes((6, 6, 3))


def _loss_and_grad(net, x, dy):
    y = net.forward(x, train=True)
    return float((y * dy).sum())


def test_backward_matches_finite_differences_through_branches():
    rng = np.random.default_rng(1)
    net = branchy().build((5, 5, 2), rng=rng)
    x = rng.standard_normal((3, 5, 5, 2))
    dy = rng.standard_normal((3, 3))
    net.forward(x, train=True)
    dx = net.backward(dy)
    grads = {n: g.copy() for n, _, g in net.named_parameters()}
    eps = 1e-6
    # input gradient at a few positions
    for idx in [(0, 0, 0, 0), (1, 2, 3, 1), (2, 4, 4, 0)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = (_loss_and_grad(net, xp, dy) - _loss_and_grad(net, xm, dy)) / (2 * eps)
        assert num == pytest.approx(dx[idx], rel=1e-5, abs=1e-8)
    # parameter gradients at a few entries of every parameter
    for name, p, _ in net.named_parameters():
        for flat in rng.choice(p.size, size=min(3, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            old = p[idx]
            p[idx] = old + eps
            up = _loss_and_grad(net, x, dy)
            p[idx] = old - eps
            down = _loss_and_grad(net, x, dy)
            p[idx] = old
            assert (up - down) / (2 * eps) == pytest.approx(grads[name][idx], rel=1e-5, abs=1e-8), name


def test_fan_out_gradients_are_summed():
    net = Net(name="twice")
    a = net.add(Dense(3, dtype="float64", use_bias=False, name="a"))
    net.add(Add(dtype="float64", name="sum"), inputs=[a, a])
    net.build((2,), rng=np.random.default_rng(0))
    x = np.ones((1, 2))
    y = net.forward(x)
    np.testing.assert_allclose(y, 2 * x @ net["a"].params["w"])
    dx = net.backward(np.ones((1, 3)))
    np.testing.assert_allclose(dx, 2 * np.ones((1, 3)) @ net["a"].params["w"].T)


def test_predict_keeps_no_cache_and_matches_forward():
    rng = np.random.default_rng(0)
    net = branchy().build((5, 5, 2), rng=rng)
    x = rng.standard_normal((2, 5, 5, 2))
    y_train_mode_off = net.forward(x, train=False)
    net.clear_cache()
    y = net.predict(x)
    np.testing.assert_allclose(y, y_train_mode_off)
    assert all(layer._cache is None for layer in net.layers)
    with pytest.raises(ConfigError, match="forward"):
        net.backward(np.zeros_like(y))


def test_forward_frees_activations_after_last_consumer():
    """The observer sees each activation; after forward only layer caches hold arrays."""
    import weakref

    rng = np.random.default_rng(0)
    net = small_chain("float64").build((8, 8, 3), rng=rng)
    refs = {}
    net.predict(rng.standard_normal((2, 8, 8, 3)))  # warm
    y = net.forward(rng.standard_normal((2, 8, 8, 3)), keep_cache=False,
                    observer=lambda name, a: refs.__setitem__(name, weakref.ref(a)))
    alive = [name for name, r in refs.items() if r() is not None]
    assert alive == ["fc1"]  # only the returned output
    del y


def test_backward_checks_dloss_shape():
    net = small_chain("float64").build((8, 8, 3))
    net.forward(np.zeros((2, 8, 8, 3)))
    with pytest.raises(ShapeError, match=r"\(2, 5\)"):
        net.backward(np.zeros((2, 4)))


def test_forward_builds_on_first_call_and_refuses_a_size_its_fc_weights_do_not_fit():
    net = small_chain("float64")
    y = net.forward(np.zeros((1, 8, 8, 3)))
    assert y.shape == (1, 5) and net.built and net.input_shape == (8, 8, 3)
    # rebuilding would silently replace trained FC weights with new random ones
    with pytest.raises(ShapeError, match="built for"):
        net.forward(np.zeros((1, 4, 4, 3)))


def test_dropout_train_flag_reaches_layers():
    net = Net.sequential([Dropout(0.5, dtype="float64"), Dense(2, dtype="float64")])
    net.build((100,))
    x = np.ones((1, 100))
    assert np.allclose(net.forward(x, train=False), net.forward(x, train=False))
    net.clear_cache()
    assert not np.allclose(net.forward(x, train=True), net.forward(x, train=False))
