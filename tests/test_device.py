"""Issue 20 on a CPU: whole nets on a device, with a fake GPU (:mod:`fake_gpu`: CuPy's interface
over NumPy, arrays a NumPy subclass) standing where CuPy would.  What a real GPU adds (CuPy's own
kernels, cuBLAS, the numbers) is in tests/gpu, run by tests/gpu/run.sh on a GPU machine."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_gpu import DeviceArray, install, is_host  # noqa: E402

from convnet import backend  # noqa: E402
from convnet.cli import main  # noqa: E402
from convnet.data import load as load_data  # noqa: E402
from convnet.device import resolve_device, select_gpu  # noqa: E402
from convnet.errors import ConfigError  # noqa: E402
from convnet.layers import BatchNorm, Conv2D, Dense, MaxPool2D, ReLU  # noqa: E402
from convnet.net import Net  # noqa: E402
from convnet.train.checkpoint import load_checkpoint  # noqa: E402
from convnet.train.config import TrainConfig  # noqa: E402
from convnet.train.trainer import Trainer  # noqa: E402

ARCH = "INPUT[8x8x1] -> CONV3-8 -> BN -> RELU -> POOL2 -> FC-16 -> RELU -> DROPOUT-0.25 -> FC-10"


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)


def _small_net():
    return Net.sequential([Conv2D(4, 3, padding=1), BatchNorm(), ReLU(), MaxPool2D(2), Dense(3)],
                          input_shape=(6, 6, 2)).build(rng=np.random.default_rng(0))


def _net_arrays(net):
    for layer in net.layers:
        for kind in ("params", "grads", "state"):
            for key, value in getattr(layer, kind).items():
                yield f"{layer.name}.{kind}.{key}", value


# -- naming a device --------------------------------------------------------------------------
def test_cpu_is_numpy_and_a_module_passes_through():
    assert resolve_device("cpu") is np and resolve_device("CPU") is np and resolve_device(np) is np


def test_gpu_without_cupy_is_one_clear_sentence(no_cupy):
    with pytest.raises(ConfigError, match=r"--device gpu needs CuPy \(pip install convnet\[gpu\]\) and a CUDA GPU; "
                                          r"received 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="CuPy"):
        _small_net().to("cuda")


def test_gpu_with_cupy_but_no_device(monkeypatch):
    install(monkeypatch, devices=0)
    with pytest.raises(ConfigError, match="sees no GPU"):
        resolve_device("gpu")


def test_unknown_device_names_the_choices():
    with pytest.raises(ConfigError, match="cpu, gpu"):
        resolve_device("tpu")


def test_gpu_and_cuda_name_cupy(monkeypatch):
    fake = install(monkeypatch)
    assert resolve_device("gpu") is fake and resolve_device("cuda") is fake


def test_one_gpu_per_rank(monkeypatch):
    fake = install(monkeypatch, devices=2)
    assert select_gpu(fake, 3, environ={}) == 1
    assert select_gpu(fake, 3, environ={"MPI_LOCALRANKID": "0"}) == 0  # the local rank wins
    assert fake.current == [1, 0]
    assert select_gpu(np, 3) is None


# -- a whole net on the device ---------------------------------------------------------------
def test_net_to_gpu_by_name_and_back_bitwise(monkeypatch):
    fake = install(monkeypatch)
    net = _small_net()
    before = {k: v.copy() for k, v in _net_arrays(net)}
    assert net.to("gpu") is net and net.xp is fake
    assert all(isinstance(v, DeviceArray) for _, v in _net_arrays(net))
    net.to("cpu")
    for name, v in _net_arrays(net):
        assert is_host(v), name
        np.testing.assert_array_equal(v, before[name], err_msg=name)


def test_input_on_another_device_is_refused_by_forward(monkeypatch):
    fake = install(monkeypatch)
    net = _small_net().to("gpu")
    x = np.zeros((2, 6, 6, 2), np.float32)
    with pytest.raises(ConfigError, match=r"Net.forward: `x` is on cpu \(numpy\) but the net's parameters are on "
                                          r"gpu \(fakecupy\).*net.to\('cpu'\)"):
        net.forward(x)
    net.to("cpu")
    with pytest.raises(ConfigError, match=r"`x` is on gpu \(fakecupy\).*on cpu \(numpy\).*net.to\('gpu'\)"):
        net.forward(fake.asarray(x))


def test_a_net_mixing_devices_names_the_layer(monkeypatch):
    install(monkeypatch)
    net = _small_net().to("gpu")
    net.check_device()
    net["bn1"].state["running_var"] = np.ones(4, np.float32)
    with pytest.raises(ConfigError, match=r"Layer 'bn1' \(BatchNorm\) holds state 'running_var' on cpu \(numpy\) "
                                          r"but the net is on gpu \(fakecupy\)"):
        net.check_device()


# -- training on the device ------------------------------------------------------------------
def _trainer(tmp_path, device, *, optimizer="momentum", net=None, name="run"):
    train, test = load_data("digits")
    config = TrainConfig(arch=ARCH, optimizer=optimizer, batch=16, epochs=1, seed=3)
    return Trainer(config, train=train, val=None, test=test, out_dir=tmp_path / name, quiet=True, device=device,
                   net=net), train


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_training_steps_keep_every_array_on_the_device(tmp_path, monkeypatch, optimizer):
    fake = install(monkeypatch)
    trainer, train = _trainer(tmp_path, "gpu", optimizer=optimizer)
    before = dict(fake.transfers)
    steps = 3
    for k in range(steps):
        xb = trainer.prepare(train.x[16 * k: 16 * k + 16])
        loss, scores = trainer.train_step(xb, train.y[16 * k: 16 * k + 16])
        assert isinstance(loss, float) and isinstance(scores, DeviceArray)
    # per step: one copy of the batch (images and labels) up, plus the dropout layer's mask (drawn on
    # the host by the run's seeded generator, so that a run draws the same on either device), and
    # one small read (the gradient check) down
    assert fake.transfers["to_device"] - before["to_device"] == (2 + 1) * steps
    assert fake.transfers["to_host"] - before["to_host"] == 1 * steps
    for name, v in _net_arrays(trainer.net):
        assert isinstance(v, DeviceArray), name
    slots = None
    for kind in trainer.optimizer.slot_names:
        for name, s in _optimizer_slots(trainer.optimizer, kind).items():
            assert isinstance(s, DeviceArray), (kind, name, slots)


def _optimizer_slots(opt, kind):
    for attr in ("slots", "_slots", "state"):
        store = getattr(opt, attr, None)
        if isinstance(store, dict) and kind in store:
            return store[kind]
    raise AssertionError(f"cannot find the optimizer's {kind} slots")


def test_a_step_on_the_device_matches_the_cpu(tmp_path, monkeypatch):
    """Same numbers, different code paths (no numba on the device): equal to rounding."""
    cpu, train = _trainer(tmp_path, "cpu", name="cpu")
    install(monkeypatch)
    gpu, _ = _trainer(tmp_path, "gpu", name="gpu")
    xb, yb = cpu.prepare(train.x[:16]), train.y[:16]
    l0, _ = cpu.train_step(xb, yb)
    l1, _ = gpu.train_step(xb, yb)
    assert abs(l0 - l1) < 1e-5
    for (name, a, _), (_, b, _) in zip(cpu.net.named_parameters(), gpu.net.named_parameters()):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-4, atol=1e-6, err_msg=name)


def test_a_checkpoint_from_the_device_is_the_host_copy_and_loads_back_bitwise(tmp_path, monkeypatch):
    install(monkeypatch)
    trainer, train = _trainer(tmp_path, "gpu")
    for k in range(2):
        trainer.train_step(trainer.prepare(train.x[16 * k: 16 * k + 16]), train.y[16 * k: 16 * k + 16])
    path = trainer.save()
    tensors, _ = load_checkpoint(path)
    assert all(type(t) is np.ndarray for t in tensors.values())
    for name, p, _ in trainer.net.named_parameters(trainable_only=False):
        np.testing.assert_array_equal(tensors[f"param/{name}"], np.asarray(p), err_msg=name)
        assert tensors[f"param/{name}"].tobytes() == np.asarray(p).tobytes()
    # onto the CPU ...
    on_cpu, _ = _trainer(tmp_path, "cpu", name="cpu")
    on_cpu.resume(path)
    for (name, a, _), (_, b, _) in zip(on_cpu.net.named_parameters(trainable_only=False),
                                       trainer.net.named_parameters(trainable_only=False)):
        assert is_host(a) and a.tobytes() == np.asarray(b).tobytes(), name
    # ... and back onto the device
    again, _ = _trainer(tmp_path, "gpu", name="again")
    again.resume(path)
    for (name, a, _), (_, b, _) in zip(again.net.named_parameters(trainable_only=False),
                                       trainer.net.named_parameters(trainable_only=False)):
        assert isinstance(a, DeviceArray) and a.tobytes() == np.asarray(b).tobytes(), name
    for name, v in again.net.named_state():
        assert isinstance(v, DeviceArray), name
    again.train_step(again.prepare(train.x[32:48]), train.y[32:48])  # slots loaded from the host move up
    for kind in again.optimizer.slot_names:
        for name, s in _optimizer_slots(again.optimizer, kind).items():
            assert isinstance(s, DeviceArray), (kind, name)


def test_gradient_allreduce_stages_device_gradients_through_the_host(monkeypatch):
    from convnet.distributed import GradientBuffer

    install(monkeypatch)
    net = _small_net().to("gpu")
    x = backend._cupy.asarray(np.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype(np.float32))
    net.backward(net.forward(x, train=True))
    grads = {name: np.asarray(g).copy() for name, _, g in net.named_parameters()}

    class TwoRanks:  # as if a second rank sent the same gradients
        size, rank, active = 2, 0, True

        def allreduce_(self, buf, *, what=""):
            assert is_host(buf)
            buf *= 2
            return buf

    summed = GradientBuffer(net, extras=1).reduce(TwoRanks(), (1.0,))
    assert summed[0] == 2.0
    for name, _, g in net.named_parameters():
        assert isinstance(g, DeviceArray), name
        np.testing.assert_array_equal(np.asarray(g), 2 * grads[name], err_msg=name)


# -- the command line ------------------------------------------------------------------------
def test_cli_device_gpu_without_cupy_exits_2_with_one_line(tmp_path, monkeypatch, capsys, no_cupy):
    monkeypatch.chdir(tmp_path)
    for argv in (["train", "--arch", ARCH, "--device", "gpu"], ["evaluate", "nothing", "--device", "gpu"],
                 ["predict", "nothing", "x.png", "--device", "gpu"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "pip install convnet[gpu]" in err and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_cli_train_evaluate_predict_on_the_device(tmp_path, monkeypatch, capsys):
    install(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--arch", ARCH, "--epochs", "1", "--max-steps", "3", "--batch", "32", "--quiet",
                 "--out", "run", "--device", "gpu"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["evaluate", "run", "--device", "gpu", "--json"]) == 0
    gpu = capsys.readouterr().out
    assert main(["evaluate", "run", "--json"]) == 0
    import json

    a, b = json.loads(gpu), json.loads(capsys.readouterr().out)
    assert a["samples"] == b["samples"] and abs(a["accuracy"] - b["accuracy"]) <= 1 / a["samples"]
