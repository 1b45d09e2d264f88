"""The device seam (issue 15): parameters, gradients, running statistics and optimizer slots are
created through an array module — the net's (``Net.xp``, ``Net.to``), or the parameter's — so a
GPU backend moves a whole net with one call.  No CuPy needed: a fake array module whose arrays
are a NumPy subclass stands in for a device."""
import numpy as np
import pytest

from convnet.layers import BatchNorm, Conv2D, Dense, LocallyConnected2D, ReLU
from convnet.layers import base as layer_base
from convnet.net import Net
from convnet.train import optimizers


class DeviceArray(np.ndarray):
    """An array "on the fake device"."""


class FakeXp:
    """An array module like NumPy whose every function returns :class:`DeviceArray`s (and which
    records the names of the functions called)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        f = getattr(np, name)
        if not callable(f):
            return f

        def on_device(*args, **kwargs):
            self.calls.append(name)
            out = f(*args, **kwargs)
            return out.view(DeviceArray) if isinstance(out, np.ndarray) else out

        return on_device


def _net():
    return Net.sequential([Conv2D(4, 3, padding=1), BatchNorm(), ReLU(), LocallyConnected2D(2, 3), Dense(3)],
                          input_shape=(6, 6, 2))


def _arrays(net):
    for layer in net.layers:
        for kind in ("params", "grads", "state"):
            for key, value in getattr(layer, kind).items():
                yield f"{layer.name}.{kind}.{key}", value


def test_a_net_builds_its_arrays_with_its_array_module():
    fake = FakeXp()
    net = _net().to(fake)
    assert net.xp is fake
    net.build(rng=np.random.default_rng(0))
    arrays = dict(_arrays(net))
    assert {k.split(".")[1] for k in arrays} == {"params", "grads", "state"}
    for name, value in arrays.items():
        assert isinstance(value, DeviceArray), name
    # the same numbers as on the host: drawn from the generator there, then moved
    host = _net().build(rng=np.random.default_rng(0))
    for (name, a), (_, b) in zip(_arrays(net), _arrays(host)):
        np.testing.assert_array_equal(np.asarray(a), b, err_msg=name)


def test_to_moves_a_built_net_and_back():
    net = _net().build(rng=np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((2, 6, 6, 2)).astype(np.float32)
    before = net.predict(x)
    net.to(FakeXp())
    assert all(isinstance(v, DeviceArray) for _, v in _arrays(net))
    net.to(np)
    assert net.xp is np and all(type(v) is np.ndarray for _, v in _arrays(net))
    np.testing.assert_array_equal(net.predict(x), before)


def test_a_layer_built_by_its_first_forward_uses_the_inputs_module(monkeypatch):
    fake = FakeXp()
    monkeypatch.setattr(layer_base, "get_array_module", lambda x: fake if isinstance(x, DeviceArray) else np)
    layer = Dense(3)
    layer.forward(np.ones((2, 4), dtype=np.float32).view(DeviceArray))
    assert isinstance(layer.params["w"], DeviceArray) and isinstance(layer.grads["b"], DeviceArray)


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_optimizer_slots_take_the_parameters_module(name, monkeypatch):
    fake = FakeXp()
    monkeypatch.setattr(optimizers, "get_array_module",
                        lambda *arrays: fake if any(isinstance(a, DeviceArray) for a in arrays) else np)
    p = np.ones((3, 2), dtype=np.float32).view(DeviceArray)
    g = np.full((3, 2), 0.5, dtype=np.float32).view(DeviceArray)
    opt = optimizers.make_optimizer(name, lr=0.1)
    opt.step([("w", p, g)])
    # each slot (momentum's velocity, Adam's two moments...) made once, by the parameter's module
    assert fake.calls.count("zeros_like") == len(opt.slot_names)
    assert isinstance(p, DeviceArray) and set(opt.state_dict()) == {"step", *(f"{s}/w" for s in opt.slot_names)}


def test_surgery_keeps_the_nets_array_module(monkeypatch):
    from convnet.analysis import surgery

    fake = FakeXp()
    monkeypatch.setattr(surgery, "get_array_module", lambda x: fake if isinstance(x, DeviceArray) else np)
    net = Net.sequential([Conv2D(3, 3), ReLU(), Dense(4), ReLU(), Dense(2)], input_shape=(5, 5, 2)).to(fake)
    net.build(rng=np.random.default_rng(3))
    fcn = surgery.to_fully_convolutional(net)
    assert fcn.xp is fake
    assert all(isinstance(v, DeviceArray) for _, v in _arrays(fcn))
    back = surgery.to_dense(fcn)
    assert back.xp is fake and all(isinstance(v, DeviceArray) for _, v in _arrays(back))


def test_a_net_still_copies_and_pickles():
    import copy
    import pickle

    net = _net().build(rng=np.random.default_rng(4))
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert clone.xp is np
        for (name, a), (_, b) in zip(_arrays(clone), _arrays(net)):
            assert a is not b
            np.testing.assert_array_equal(a, b, err_msg=name)
