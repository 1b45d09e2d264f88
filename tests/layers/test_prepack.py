"""Prepacked weights: Conv2D keeps its weight transforms (Winograd's U, the rotated filter for dx)
between calls while the weights are unchanged — bitwise the same results, rebuilt whenever the
weights change, counted by the memory model."""
import numpy as np
import pytest

from convnet.analysis.memory import MemoryModel
from convnet.layers import Conv2D
from convnet.ops.fast.winograd import transform_filter
from convnet.pattern import parse
from convnet.train.optimizers import SGD
from convnet.train.trainer import load_net_tensors

RNG = np.random.default_rng(7)
X = RNG.standard_normal((2, 10, 10, 32)).astype(np.float32)
DY = RNG.standard_normal((2, 10, 10, 32)).astype(np.float32)


@pytest.fixture(autouse=True)
def prepacking_on(monkeypatch):
    monkeypatch.setenv("CONVNET_PREPACK", "1")


def test_prepacking_is_off_unless_asked_for(monkeypatch):
    """A library user who edits weights in place gets what they wrote: no transform is kept."""
    monkeypatch.delenv("CONVNET_PREPACK", raising=False)
    layer = conv("winograd4")
    a = layer.forward(X)
    layer.params["w"][...] *= -1  # in place, without weights_changed()
    np.testing.assert_allclose(layer.forward(X), -a + 2 * layer.params["b"], rtol=1e-5, atol=1e-4)


def conv(algorithm, *, trainable=True):
    layer = Conv2D(32, 3, padding=1, algorithm=algorithm)
    layer.build((10, 10, 32), rng=np.random.default_rng(0))
    layer.trainable = trainable
    return layer


def pack(layer):
    return None if layer._packed is None else layer._packed[1]


def run_twice(algorithm, trainable):
    """Two inference calls, then two training steps without an update (a frozen layer's case)."""
    layer = conv(algorithm, trainable=trainable)
    out = [layer.forward(X, keep_cache=False), layer.forward(X, keep_cache=False)]
    for _ in range(2):
        out.append(layer.forward(X, train=True))
        out.append(layer.backward(DY))
        out.append(layer.grads["w"])
    return out


@pytest.mark.parametrize("algorithm", ["winograd4", "winograd2", "im2col"])  # im2col: dx by convolution
@pytest.mark.parametrize("trainable", [True, False], ids=["trainable", "frozen"])
def test_outputs_bitwise_equal_with_and_without_prepacking(monkeypatch, algorithm, trainable):
    packed = run_twice(algorithm, trainable)
    monkeypatch.setenv("CONVNET_PREPACK", "0")
    plain = run_twice(algorithm, trainable)
    for a, b in zip(packed, plain):
        np.testing.assert_array_equal(a, b)


def test_inference_reuses_u_and_keeps_it():
    layer = conv("winograd4")
    layer.forward(X, keep_cache=False)
    u = pack(layer).arrays[("U", 4)]
    np.testing.assert_array_equal(u, transform_filter(layer.params["w"], 4))
    layer.forward(X, keep_cache=False)
    assert pack(layer).arrays[("U", 4)] is u and pack(layer).made == 1
    assert layer.prepacked_bytes == u.nbytes == 36 * 32 * 32 * 4


def test_training_keeps_nothing_for_a_trainable_layer_but_reuses_a_current_u():
    layer = conv("winograd4")
    layer.forward(X, train=True)
    layer.backward(DY)
    assert layer.prepacked_bytes == 0 and pack(layer).made == 2  # U and the rotated U, both dropped
    layer.forward(X, keep_cache=False)  # an evaluation keeps U ...
    layer.forward(X, train=True)  # ... which the next training forward reuses
    layer.backward(DY)
    assert pack(layer).made == 4 and list(pack(layer).arrays) == [("U", 4)]


def test_frozen_layer_keeps_both_transforms_across_steps():
    layer = conv("winograd4", trainable=False)
    for _ in range(3):
        layer.forward(X, train=True)
        layer.backward(DY)
    assert pack(layer).made == 2 and set(pack(layer).arrays) == {("U", 4), ("U_rot", 4)}


def test_dx_by_convolution_keeps_the_rotated_filter_when_frozen():
    layer = conv("im2col", trainable=False)
    for _ in range(2):
        layer.forward(X, train=True)
        layer.backward(DY)
    w = layer.params["w"]
    np.testing.assert_array_equal(pack(layer).arrays["w_rot"], w[::-1, ::-1].transpose(0, 1, 3, 2))
    assert pack(layer).made == 1


def small_net():
    net = parse("INPUT[10x10x32] -> CONV3-32 -> RELU -> GAP -> FC-4")
    net.layers[0].algorithm = "winograd4"
    net.build(rng=np.random.default_rng(1))
    return net


def kept_u(net):
    return pack(net.layers[0]).arrays[("U", 4)]


def test_optimizer_step_rebuilds_u():
    net = small_net()
    conv_layer = net.layers[0]
    net.predict(X)
    before, version = kept_u(net), conv_layer.weights_version
    net.backward(np.ones_like(net.forward(X, train=True)))
    SGD(lr=0.1).step(net.named_parameters())
    assert conv_layer.weights_version == version + 1 and conv_layer.prepacked_bytes == 0
    net.predict(X)
    assert kept_u(net) is not before
    np.testing.assert_array_equal(kept_u(net), transform_filter(conv_layer.params["w"], 4))


def test_load_rebuilds_u():
    net, other = small_net(), parse("INPUT[10x10x32] -> CONV3-32 -> RELU -> GAP -> FC-4")
    other.build(rng=np.random.default_rng(2))
    net.predict(X)
    before = kept_u(net)
    load_net_tensors(net, {f"param/{n}": p.copy() for n, p, _ in other.named_parameters(trainable_only=False)})
    net.predict(X)
    assert kept_u(net) is not before
    np.testing.assert_array_equal(kept_u(net), transform_filter(other.layers[0].params["w"], 4))


def test_edit_in_place_with_weights_changed_and_new_array_rebuild_u():
    layer = conv("winograd4")
    layer.forward(X, keep_cache=False)
    before = pack(layer).arrays[("U", 4)]
    layer.params["w"] *= 2
    layer.weights_changed()
    layer.forward(X, keep_cache=False)
    after = pack(layer).arrays[("U", 4)]
    assert after is not before
    np.testing.assert_array_equal(after, transform_filter(layer.params["w"], 4))
    layer.params["w"] = layer.params["w"] / 2  # a new array: noticed without weights_changed
    layer.forward(X, keep_cache=False)
    assert pack(layer).arrays[("U", 4)] is not after
    np.testing.assert_array_equal(pack(layer).arrays[("U", 4)], transform_filter(layer.params["w"], 4))


def test_no_stale_u_after_net_to():
    net = small_net()
    net.predict(X)
    version = net.layers[0].weights_version
    net.to(np)
    assert net.layers[0].weights_version > version and net.layers[0]._packed is None
    net.predict(X)
    np.testing.assert_array_equal(kept_u(net), transform_filter(net.layers[0].params["w"], 4))


def test_memory_model_counts_kept_u_as_persistent(monkeypatch):
    net = small_net()
    u = 36 * 32 * 32 * 4
    inference = MemoryModel(net, train=False).estimate(2)
    assert inference.prepacked == u and inference.total == inference.activations_peak + inference.parameters + \
        u + inference.data
    assert "prepacked weights" in inference.report()
    assert MemoryModel(net, train=True).estimate(2).prepacked == 0  # weights change every step
    net.predict(X)
    assert net.layers[0].prepacked_bytes == u
    net.layers[0].trainable = False
    assert MemoryModel(net, train=True).estimate(2).prepacked == 2 * u  # U and the rotated U
    monkeypatch.setenv("CONVNET_PREPACK", "0")
    assert MemoryModel(net, train=False).estimate(2).prepacked == 0
    net.predict(X)
    assert net.layers[0].prepacked_bytes == 0


def test_gradcheck_command_tells_the_layers_of_its_edits_in_place():
    from convnet.commands.gradcheck import _to_float64, gradcheck_net

    net = parse("INPUT[8x8x32] -> CONV3-32 -> RELU -> GAP -> FC-4")
    net.layers[0].algorithm = "winograd4"
    net.build(rng=np.random.default_rng(0))
    _to_float64(net)
    assert max(gradcheck_net(net, (8, 8, 32), directions=1).values()) < 1e-6
