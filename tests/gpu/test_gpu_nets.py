"""Whole nets on the GPU (issue 20): a resnet20_cifar step equals the CPU step, digits training
reaches the CPU's test accuracy, and a checkpoint goes GPU → CPU → GPU bitwise."""
import numpy as np
import pytest

from convnet import zoo
from convnet.backend import get_array_module, to_numpy
from convnet.ops import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from convnet.train.optimizers import Momentum


def _step(net, x, y):
    opt = Momentum(lr=0.01, momentum=0.9)
    scores = net.forward(x, train=True)
    loss, cache = softmax_cross_entropy_forward(scores, y)
    net.backward(softmax_cross_entropy_backward(1.0, cache), input_grad=False)
    grads = {name: to_numpy(g).copy() for name, _, g in net.named_parameters()}
    opt.step(net.named_parameters())
    return loss, grads


def _resnet20(dtype):
    net = zoo.get("resnet20_cifar")
    for layer in net.layers:
        layer.dtype = np.dtype(dtype)
    return net.build(rng=np.random.default_rng(1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resnet20_step_equals_the_cpu_step(cp, dtype):
    """float64: every gradient to 1e-10 of its scale.  float32: the loss and the updated parameters
    to 1e-4 (a float32 gradient through 19 BatchNorm layers differs between any two summation
    orders by up to ~1e-2 of its largest entry — two CPU code paths, with and without numba, do)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 32, 32, 3)).astype(dtype)
    y = rng.integers(0, 10, 16)
    cpu, gpu = _resnet20(dtype), _resnet20(dtype).to("gpu")
    l0, g0 = _step(cpu, x, y)
    l1, g1 = _step(gpu, cp.asarray(x), cp.asarray(y))
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert abs(l0 - l1) <= tol * max(1.0, abs(l0))
    if dtype == "float64":
        for name, g in g0.items():
            np.testing.assert_allclose(g1[name], g, rtol=tol, atol=tol * max(1.0, float(np.abs(g).max())), err_msg=name)
    for (name, a, _), (_, b, _) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert get_array_module(b) is cp, name
        np.testing.assert_allclose(to_numpy(b), a, rtol=tol, atol=tol, err_msg=name)
    for (name, a), (_, b) in zip(cpu.named_state(), gpu.named_state()):
        assert get_array_module(b) is cp, name
        np.testing.assert_allclose(to_numpy(b), a, rtol=tol, atol=tol, err_msg=name)


def test_digits_training_on_the_gpu_reaches_the_cpu_accuracy(cp, tmp_path):
    from convnet.train.config import TrainConfig
    from convnet.train.run import train

    config = TrainConfig(epochs=3, seed=0)
    cpu = train(config, tmp_path / "cpu", quiet=True)
    gpu = train(config, tmp_path / "gpu", quiet=True, device="gpu")
    print(f"digits test accuracy: cpu {cpu['test_accuracy']:.4f}, gpu {gpu['test_accuracy']:.4f}")
    assert gpu["test_accuracy"] > 0.9
    assert abs(gpu["test_accuracy"] - cpu["test_accuracy"]) <= 0.02


def test_checkpoint_gpu_to_cpu_to_gpu_bitwise(cp, tmp_path):
    from convnet.train.run import TrainedNet, train
    from convnet.train.config import TrainConfig
    from convnet.train.checkpoint import load_checkpoint, save_checkpoint

    out = train(TrainConfig(epochs=1, max_steps=5, seed=0), tmp_path / "gpu", quiet=True, device="gpu")["out_dir"]
    path = f"{out}/last.safetensors"
    tensors, meta = load_checkpoint(path)
    on_cpu = TrainedNet(path, device="cpu")
    on_gpu = TrainedNet(path, device="gpu")
    for (name, a, _), (_, b, _) in zip(on_cpu.net.named_parameters(trainable_only=False), on_gpu.net.named_parameters(trainable_only=False)):
        assert get_array_module(a) is np and get_array_module(b) is cp, name
        assert a.tobytes() == tensors[f"param/{name}"].tobytes() == to_numpy(b).tobytes(), name
    # written again from the GPU net: the same bytes
    again = {f"param/{name}": to_numpy(p) for name, p, _ in on_gpu.net.named_parameters(trainable_only=False)}
    again.update({f"state/{name}": to_numpy(v) for name, v in on_gpu.net.named_state()})
    save_checkpoint(tmp_path / "again.safetensors", {**tensors, **again}, meta)
    back, _ = load_checkpoint(tmp_path / "again.safetensors")
    for key, t in tensors.items():
        assert back[key].tobytes() == t.tobytes(), key
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(on_gpu.scores(x), on_cpu.scores(x), rtol=1e-4, atol=1e-5)
