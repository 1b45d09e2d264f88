"""Folded batch norm at inference: with prepacking on, ``Net.predict`` runs a CONV and the BN (or
AFFINE) after it as one convolution with ``w · scale`` and ``b · scale + shift`` — the same
numbers as the two layers to float32 rounding (and as PyTorch's Conv2d + BatchNorm2d in eval
mode), rebuilt whenever either layer's parameters or BN's running statistics change, never
where the CONV's output is read by anything else, and counted by the memory model."""
import numpy as np
import pytest

from convnet.analysis import summarize
from convnet.analysis.memory import MemoryModel
from convnet.layers import Add, BatchNorm, ChannelAffine, Conv2D, GlobalAvgPool, ReLU
from convnet.net import Net
from convnet.train.optimizers import SGD

RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def prepacking_on(monkeypatch):
    monkeypatch.setenv("CONVNET_PREPACK", "1")


def randomise(bn, rng):
    """γ, β and running statistics far from their defaults (identity folds hide mistakes)."""
    c = bn.params["gamma"].shape[0]
    bn.params["gamma"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    bn.params["beta"] = rng.normal(0, 0.5, c).astype(np.float32)
    bn.state["running_mean"] = rng.normal(0, 0.5, c).astype(np.float32)
    bn.state["running_var"] = rng.uniform(0.3, 2.0, c).astype(np.float32)


def conv_bn_net(conv, input_shape, *, affine=None):
    net = Net(input_shape=input_shape)
    net.add(conv, name="conv")
    net.add(affine if affine is not None else BatchNorm(), name="bn")
    net.add(ReLU(), name="relu")
    net.build(rng=np.random.default_rng(3))
    if isinstance(net.node("bn").layer, BatchNorm):
        randomise(net.node("bn").layer, np.random.default_rng(4))
    else:
        for key in ("scale", "shift"):
            net.node("bn").layer.params[key] = RNG.normal(0.5, 0.5, net.node("bn").layer.params[key].shape).astype(
                np.float32)
    return net


def unfolded(net, x):
    """The two layers run one after the other (an eval-mode forward that keeps caches never folds)."""
    return net.forward(x, train=False, keep_cache=True)


CASES = [
    (dict(filters=16, kernel_size=3, padding=1, algorithm="im2col"), (9, 11, 8)),
    (dict(filters=16, kernel_size=3, padding=1, algorithm="winograd4"), (9, 11, 8)),
    (dict(filters=16, kernel_size=3, padding=1, algorithm="direct"), (9, 11, 8)),
    (dict(filters=12, kernel_size=(3, 1), stride=(2, 1), padding=((1, 1), (0, 0)), fit="crop"), (9, 7, 6)),
    (dict(filters=8, kernel_size=1, stride=2, algorithm="gemm1x1", use_bias=False, fit="crop"), (8, 10, 6)),
    (dict(filters=12, kernel_size=(1, 3), padding=((0, 0), (1, 1)), groups=3, use_bias=False), (7, 9, 6)),
]


@pytest.mark.parametrize("kwargs, shape", CASES, ids=["im2col", "winograd4", "direct", "3x1-stride-2x1", "1x1-stride-2",
                                                     "1x3-grouped"])
def test_folded_predict_matches_the_two_layers(kwargs, shape):
    kwargs = dict(kwargs)
    filters, size = kwargs.pop("filters"), kwargs.pop("kernel_size")
    net = conv_bn_net(Conv2D(filters, size, **kwargs), shape)
    assert net.folds() == {"conv": "bn"}
    x = RNG.standard_normal((3, *shape)).astype(np.float32)
    ref = unfolded(net, x)
    got = net.predict(x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert net.node("conv").layer.prepacked_bytes > 0  # the folded weights are kept


def test_folded_predict_matches_torch(torch):
    """PyTorch's Conv2d + BatchNorm2d in eval mode, non-square kernel and stride."""
    net = conv_bn_net(Conv2D(10, (3, 2), stride=(1, 2), padding=((1, 1), (0, 0)), fit="crop"), (8, 9, 5))
    conv, bn = net.node("conv").layer, net.node("bn").layer
    tconv = torch.nn.Conv2d(5, 10, (3, 2), stride=(1, 2), padding=(1, 0))
    tbn = torch.nn.BatchNorm2d(10, eps=bn.eps)
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(conv.params["w"].transpose(3, 2, 0, 1).copy()))
        tconv.bias.copy_(torch.from_numpy(conv.params["b"]))
        tbn.weight.copy_(torch.from_numpy(bn.params["gamma"]))
        tbn.bias.copy_(torch.from_numpy(bn.params["beta"]))
        tbn.running_mean.copy_(torch.from_numpy(bn.state["running_mean"]))
        tbn.running_var.copy_(torch.from_numpy(bn.state["running_var"]))
    model = torch.nn.Sequential(tconv, tbn, torch.nn.ReLU()).eval()
    x = RNG.standard_normal((2, 8, 9, 5)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(net.predict(x), ref, rtol=1e-5, atol=1e-5)


def test_channel_affine_folds_too():
    net = conv_bn_net(Conv2D(8, 3, padding=1), (6, 6, 4), affine=ChannelAffine())
    x = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
    assert net.folds() == {"conv": "bn"}
    np.testing.assert_allclose(net.predict(x), unfolded(net, x), rtol=1e-5, atol=1e-5)


def test_bn_not_run_and_folded_weights_made_once(monkeypatch):
    net = conv_bn_net(Conv2D(8, 3, padding=1), (6, 6, 4))
    x = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
    calls = []
    bn = net.node("bn").layer
    monkeypatch.setattr(bn, "forward", lambda *a, **k: calls.append(1))
    first = net.predict(x)
    kept = net.node("conv").layer._folded
    second = net.predict(x)
    assert calls == [] and net.node("conv").layer._folded is kept
    np.testing.assert_array_equal(first, second)


def test_training_step_running_stats_and_in_place_edits_refold():
    """Every way the folded numbers go stale: an optimizer step (conv weights and γ, β), the running
    statistics a training forward replaces, and an edit in place announced by weights_changed()."""
    net = conv_bn_net(Conv2D(8, 3, padding=1), (6, 6, 4))
    conv, bn = net.node("conv").layer, net.node("bn").layer
    x = RNG.standard_normal((4, 6, 6, 4)).astype(np.float32)
    net.predict(x)
    y = net.forward(x, train=True)
    net.backward(RNG.standard_normal(y.shape).astype(np.float32))
    SGD(lr=0.1).step(net.named_parameters())
    np.testing.assert_allclose(net.predict(x), unfolded(net, x), rtol=1e-5, atol=1e-5)
    net.forward(x, train=True)  # new running statistics only (no step)
    np.testing.assert_allclose(net.predict(x), unfolded(net, x), rtol=1e-5, atol=1e-5)
    bn.state["running_var"] *= 3.0  # in place, announced
    bn.weights_changed()
    np.testing.assert_allclose(net.predict(x), unfolded(net, x), rtol=1e-5, atol=1e-5)
    conv.params["w"] *= -1.0
    conv.weights_changed()
    np.testing.assert_allclose(net.predict(x), unfolded(net, x), rtol=1e-5, atol=1e-5)


def test_no_fold_where_the_conv_output_is_read_twice_or_prepacking_is_off(monkeypatch):
    net = Net(input_shape=(6, 6, 4))
    net.add(Conv2D(4, 3, padding=1), name="conv")
    net.add(BatchNorm(), name="bn")
    net.add(Add(), inputs=["conv", "bn"], name="add")
    net.add(GlobalAvgPool(), name="gap")
    net.build(rng=np.random.default_rng(0))
    assert net.folds() == {}
    plain = conv_bn_net(Conv2D(8, 3, padding=1), (6, 6, 4))
    monkeypatch.setenv("CONVNET_PREPACK", "0")
    assert plain.folds() == {}
    plain.predict(RNG.standard_normal((1, 6, 6, 4)).astype(np.float32))
    assert plain.node("conv").layer._folded is None


def test_observer_sees_the_unfolded_bn_output():
    net = conv_bn_net(Conv2D(8, 3, padding=1), (6, 6, 4))
    x = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
    seen = {}
    net.forward(x, keep_cache=False, observer=lambda name, y: seen.setdefault(name, y.copy()))
    assert not np.allclose(seen["conv"], seen["bn"])  # the conv's own output, then the BN's


def test_memory_model_counts_folded_weights_and_no_bn_activation():
    net = conv_bn_net(Conv2D(8, 3, padding=1, use_bias=False, algorithm="im2col"), (6, 6, 4))
    folded_bytes = (3 * 3 * 4 * 8 + 8) * 4  # w · scale, and a bias the conv did not have
    est = MemoryModel(net, train=False).estimate(2)
    assert est.prepacked == folded_bytes
    x = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
    net.predict(x)
    assert net.node("conv").layer.prepacked_bytes == folded_bytes
    rows = {r.name: r.storage for r in summarize(net, batch=2).rows}
    assert rows["bn"] == "folded" and rows["conv"] == "new"
    assert MemoryModel(net, train=True).estimate(2).prepacked == 0


def test_eps_change_and_training_forward_drop_the_fold():
    net = conv_bn_net(Conv2D(8, 3, padding=1), (6, 6, 4))
    conv, bn = net.node("conv").layer, net.node("bn").layer
    x = RNG.standard_normal((4, 6, 6, 4)).astype(np.float32)
    net.predict(x)
    bn.eps = 0.5  # not a parameter: part of the fold's key
    np.testing.assert_allclose(net.predict(x), unfolded(net, x), rtol=1e-5, atol=1e-5)
    assert conv.prepacked_bytes > 0
    net.forward(x, train=True)  # what the fold was made from changes in training: dropped, not held
    assert conv._folded is None


def test_memory_model_with_nothing_in_place_counts_no_array_for_a_fused_relu(monkeypatch):
    """With ``net.inplace`` False: folded, the BN stores nothing and the ReLU after it a new array
    (it runs by itself); unfolded, the BN runs the ReLU, which stores nothing."""
    net = conv_bn_net(Conv2D(8, 3, padding=1), (6, 6, 4))
    net.inplace = False
    rows = {r.name: r.storage for r in summarize(net, batch=2).rows}
    assert rows["bn"] == "folded" and rows["relu"] == "new"
    monkeypatch.setenv("CONVNET_PREPACK", "0")
    rows = {r.name: r.storage for r in summarize(net, batch=2).rows}
    assert rows["bn"] == "new" and rows["relu"] == "fused"
    net.fuse = False
    rows = {r.name: r.storage for r in summarize(net, batch=2).rows}
    assert rows["relu"] == rows["bn"] == "new"
