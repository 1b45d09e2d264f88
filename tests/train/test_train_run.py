"""Issue 4: the training run end to end — the main job, predict, exact resume, non-finite stops, exit codes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convnet.errors import BudgetError, CheckpointError, NonFiniteError
from convnet.train.checkpoint import load_checkpoint
from convnet.train.config import TrainConfig
from convnet.train.run import train

SMALL = "INPUT[8x8x1] -> CONV3-8 -> RELU -> POOL2 -> DROPOUT-0.2 -> FC-10"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli(*argv, check=True, timeout=240):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "convnet", *argv], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"convnet {' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    """The README's main job: `convnet train` with no arguments (output folder redirected)."""
    out = tmp_path_factory.mktemp("main") / "run"
    t0 = time.perf_counter()
    proc = cli("train", "--out", str(out))
    return out, proc, time.perf_counter() - t0


def test_main_job_reaches_97_percent_and_writes_its_files(main_job):
    out, proc, seconds = main_job
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97, metrics["test_accuracy"]
    for name in ("last.safetensors", "best.safetensors", "curves.png", "filters.png", "history.csv", "history.json"):
        assert (out / name).stat().st_size > 0, name
    assert "test accuracy" in proc.stdout
    assert seconds < 120, f"the main job took {seconds:.0f} s"


def test_predict_returns_the_right_class_for_a_digits_test_image(main_job, tmp_path):
    from PIL import Image

    from convnet.data import load_digits

    out, _, _ = main_job
    _, test = load_digits()
    hits = 0
    for i in range(5):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(np.round(test.x[i, :, :, 0] * 255).astype(np.uint8), mode="L").save(path)
        proc = cli("predict", str(out / "best.safetensors"), str(path), "--top", "1")
        predicted = proc.stdout.split(":")[-1].split("(")[0].strip()
        hits += predicted == str(test.y[i])
    assert hits >= 4


def test_evaluate_reports_the_same_accuracy(main_job):
    out, _, _ = main_job
    proc = cli("evaluate", str(out / "best.safetensors"), "--json")
    report = json.loads(proc.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert np.array(report["confusion_matrix"]).sum() == report["samples"]


def _params(path):
    tensors, meta = load_checkpoint(path)
    return {k: v for k, v in tensors.items() if not k.startswith("state/")}, meta


def test_ten_steps_kill_resume_ten_equals_twenty_straight(tmp_path):
    common = ["train", "--arch", SMALL, "--epochs", "3", "--batch", "16", "--optimizer", "momentum", "--quiet"]
    cli(*common, "--out", str(tmp_path / "straight"), "--max-steps", "20")
    # a run that checkpoints every step, killed with SIGKILL once it has passed step 10
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.Popen([sys.executable, "-m", "convnet", *common, "--out", str(tmp_path / "killed"),
                             "--checkpoint-every", "1", "--max-steps", "60"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "last.safetensors"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if last.exists():
                try:
                    if load_checkpoint(last)[1]["step"] >= 10:
                        break
                except CheckpointError:
                    pass
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    _, meta = _params(last)
    assert 10 <= meta["step"] < 60
    cli(*common, "--out", str(tmp_path / "killed"), "--max-steps", "20", "--resume",
        check=meta["step"] <= 20)
    if meta["step"] > 20:
        pytest.skip("the process outran the kill past step 20")
    a, meta_a = _params(tmp_path / "straight" / "last.safetensors")
    b, meta_b = _params(last)
    assert meta_a["step"] == meta_b["step"] == 20
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_resuming_with_another_configuration_is_refused(tmp_path):
    cfg = TrainConfig(arch=SMALL, epochs=1, batch=64, max_steps=2)
    train(cfg, tmp_path, quiet=True)
    with pytest.raises(CheckpointError, match="configuration"):
        train(TrainConfig(arch=SMALL, epochs=1, batch=64, lr=0.5, max_steps=2), tmp_path, resume=True, quiet=True)


def test_huge_learning_rate_stops_with_nonfinite_and_keeps_the_checkpoint(tmp_path):
    cfg = TrainConfig(arch=SMALL, epochs=1, batch=64, optimizer="sgd", schedule="constant")
    train(cfg, tmp_path, quiet=True)
    good = (tmp_path / "last.safetensors").read_bytes()
    bad = TrainConfig(arch=SMALL, epochs=3, batch=64, optimizer="sgd", schedule="constant", lr=1e10)
    with pytest.raises(NonFiniteError, match=r"Step \d+") as info:
        train(bad, tmp_path / "bad", quiet=True)
    assert "layer" in str(info.value) or "gradient" in str(info.value)
    assert (tmp_path / "last.safetensors").read_bytes() == good


def test_over_budget_names_the_largest_batch_that_fits(tmp_path):
    cfg = TrainConfig(arch=SMALL, epochs=1, batch=4096, max_memory=2_000_000)
    with pytest.raises(BudgetError, match=r"largest batch that fits is \d+") as info:
        train(cfg, tmp_path, quiet=True)
    batch = int(str(info.value).split("largest batch that fits is ")[1].split()[0])
    metrics = train(TrainConfig(arch=SMALL, epochs=1, batch=batch, max_memory=2_000_000, max_steps=2), tmp_path, quiet=True)
    assert metrics["steps"] == 2


@pytest.mark.parametrize(
    "argv, code",
    [
        (["train", "--data", "npz:/nonexistent/file.npz", "--quiet"], 3),  # bad data file
        (["train", "--arch", SMALL, "--batch", "100000", "--max-memory", "1MB", "--quiet"], 5),  # over budget
        (["train", "--arch", SMALL, "--lr", "1e10", "--optimizer", "sgd", "--schedule", "constant", "--quiet"], 6),
        (["train", "--arch", "INPUT[8x8x1] -> CONV3-8 ->", "--quiet"], 2),  # bad input: syntax error
        (["evaluate", "/nonexistent.safetensors"], 7),  # checkpoint
    ],
)
def test_exit_codes(tmp_path, argv, code):
    proc = cli(*argv, "--out", str(tmp_path), check=False) if argv[0] == "train" else cli(*argv, check=False)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip(), "an error must be explained on stderr"
    assert "Traceback" not in proc.stderr


def test_security_refusal_exit_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'marker'}",))

    folder = tmp_path / "cifar"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    (folder / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    proc = cli("train", "--data", f"cifar10:{folder}", "--quiet", "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode == 4, proc.stderr
    assert not (tmp_path / "marker").exists()


def _write_mnist(folder: Path, rng):
    import struct

    folder.mkdir()
    for split, n in (("train", 120), ("t10k", 40)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = np.zeros((n, 12, 12), np.uint8)
        for i, c in enumerate(y):  # a learnable pattern: a bright square whose place encodes the class
            r, q = divmod(int(c), 4)
            x[i, 1 + 3 * r : 4 + 3 * r, 1 + 3 * q : 3 + 3 * q] = 255
        (folder / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 12, 12) + x.tobytes())
        (folder / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + y.tobytes())


def _write_cifar_binary(folder: Path, rng):
    folder.mkdir()
    for name, n in (("data_batch_1.bin", 60), ("test_batch.bin", 20)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 256, (n, 3 * 32 * 32)).astype(np.uint8)
        (folder / name).write_bytes(np.concatenate([y[:, None], x], axis=1).tobytes())


@pytest.mark.parametrize("kind", ["mnist", "cifar10"])
def test_generated_folders_train_and_evaluate_through_the_cli(tmp_path, kind):
    rng = np.random.default_rng(0)
    data = tmp_path / kind
    (_write_mnist if kind == "mnist" else _write_cifar_binary)(data, rng)
    shape = "12x12x1" if kind == "mnist" else "32x32x3"
    arch = f"INPUT[{shape}] -> CONV3-4 -> RELU -> POOL2 -> FC-10"
    out = tmp_path / "run"
    epochs = "8" if kind == "mnist" else "1"
    cli("train", "--data", f"{kind}:{data}", "--arch", arch, "--epochs", epochs, "--batch", "16", "--quiet", "--out", str(out))
    report = json.loads(cli("evaluate", str(out / "last.safetensors"), "--json").stdout)
    assert report["samples"] == (40 if kind == "mnist" else 20)
    if kind == "mnist":
        assert report["accuracy"] > 0.5  # the pattern is learnable


def test_convert_then_dense_predict_writes_a_heatmap(main_job, tmp_path):
    from PIL import Image

    from convnet.data import load_digits

    out, _, _ = main_job
    fcn = tmp_path / "fcn.safetensors"
    proc = cli("convert", str(out / "best.safetensors"), "--to-fully-conv", "--out", str(fcn))
    assert "CONV" in proc.stdout and fcn.exists()
    _, test = load_digits()
    mosaic = np.concatenate([test.x[i, :, :, 0] for i in range(3)], axis=1)  # 8×24: three digits side by side
    Image.fromarray(np.round(mosaic * 255).astype(np.uint8), mode="L").save(tmp_path / "mosaic.png")
    heat = tmp_path / "heat.png"
    proc = cli("predict", str(fcn), str(tmp_path / "mosaic.png"), "--dense", str(heat), "--shifts", "2")
    assert "1×9 score map" in proc.stdout, proc.stdout
    assert heat.stat().st_size > 1000
    # the converted checkpoint classifies a single 8×8 digit like the original
    Image.fromarray(np.round(test.x[0, :, :, 0] * 255).astype(np.uint8), mode="L").save(tmp_path / "one.png")
    a = cli("predict", str(out / "best.safetensors"), str(tmp_path / "one.png"), "--top", "1").stdout.split(":")[-1]
    b = cli("predict", str(fcn), str(tmp_path / "one.png"), "--top", "1").stdout.split(":")[-1]
    assert a.split("(")[0] == b.split("(")[0]


def test_gradcheck_command_passes_on_a_small_net_and_fails_on_a_broken_one(monkeypatch, capsys):
    from convnet.cli import main

    assert main(["gradcheck", "INPUT[9x7x2] -> CONV3-3/P1 -> BN -> RELU -> POOL2/S1 -> FC-4"]) == 0
    assert "tensors within" in capsys.readouterr().out
    import convnet.layers.activation as act

    monkeypatch.setattr(act, "relu_backward", lambda dy, y, inplace=False: dy)  # a wrong gradient: identity
    assert main(["gradcheck", "INPUT[9x7x2] -> CONV3-3/P1 -> RELU -> FC-4"]) == 9
    assert "FAIL" in capsys.readouterr().out
