"""`mpiexec -n 2`: the same training as one process, loud and quick failures, checkpoints that
survive a killed rank, sharded evaluation.  Each test starts real MPI jobs (a few seconds each)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convnet.cli import main
from convnet.train.checkpoint import load_checkpoint

SRC = str(Path(__file__).resolve().parents[2] / "src")
BN_NET = "INPUT[8x8x1] -> CONV3-8 -> BN -> RELU -> POOL2 -> FC-16 -> DROPOUT-0.3 -> FC-10"
TIMEOUT = 120


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
            "CONVNET_MPI_TIMEOUT": "60"}


def _convnet(*args):
    return [sys.executable, "-m", "convnet", *args]


def _run(cmd, cwd, timeout=TIMEOUT):
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _train_argv(out, *extra):
    return ["train", "--epochs", "1", "--quiet", "--out", out, *extra]


def _close(a, b):
    ta, ma = load_checkpoint(a)
    tb, mb = load_checkpoint(b)
    assert set(ta) == set(tb)
    for k in ta:
        np.testing.assert_allclose(tb[k], ta[k], rtol=1e-4, atol=1e-6, err_msg=k)
    return ma, mb


@pytest.fixture(scope="module")
def lenet_data(tmp_path_factory):
    """64 random 32×32 grey images in 10 classes (lenet5's input), as an npz file."""
    root = tmp_path_factory.mktemp("lenet")
    rng = np.random.default_rng(0)
    y = np.arange(80) % 10
    x = (rng.random((80, 32, 32)) * 0.5 + y[:, None, None] / 20).astype(np.float32)
    np.savez(root / "d.npz", x=x, y=y)
    return root / "d.npz"


@pytest.mark.parametrize("case", ["lenet5", "batchnorm-uneven"])
def test_one_and_two_ranks_train_the_same(mpiexec, tmp_path, lenet_data, case):
    """The same command on 1 and 2 ranks: weights, optimizer slots and BN running statistics agree
    (rtol 1e-4) after 5 steps; BN net: batch 7 over 2 ranks (slices of 4 and 3), augmentation and
    dropout on, momentum (Adam would magnify the bias-before-BN's noise-sized gradient)."""
    if case == "lenet5":
        extra = ["--model", "lenet5", "--data", f"npz:{lenet_data}", "--batch", "8", "--max-steps", "5"]
    else:
        extra = ["--arch", BN_NET, "--batch", "7", "--max-steps", "5", "--crop-padding", "1", "--hflip",
                 "--optimizer", "momentum", "--lr", "0.05"]
    assert main(_train_argv(str(tmp_path / "one"), *extra)) == 0
    two = _run([mpiexec, "-n", "2", *_convnet(*_train_argv("two", *extra))], tmp_path)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("test accuracy") == 1  # rank 0 alone reports
    ma, mb = _close(tmp_path / "one" / "last.safetensors", tmp_path / "two" / "last.safetensors")
    assert (ma["world_size"], mb["world_size"], mb["step"]) == (1, 2, 5)
    if case == "batchnorm-uneven":  # sharded evaluation gathers the same numbers on rank 0
        ev = _run([mpiexec, "-n", "2", *_convnet("evaluate", "two", "--json")], tmp_path)
        assert ev.returncode == 0, ev.stderr
        one = _run(_convnet("evaluate", "two", "--json"), tmp_path)
        assert json.loads(ev.stdout) == json.loads(one.stdout)


def test_a_rank_that_fails_ends_the_job_quickly(mpiexec, tmp_path):
    """Rank 1 cannot read its data while rank 0 can: the job ends non-zero, well within 60 s, and the
    error names the rank."""
    good = _convnet(*_train_argv("r", "--epochs", "50"))
    bad = _convnet(*_train_argv("r", "--epochs", "50", "--data", "npz:/no/such.npz"))
    t0 = time.monotonic()
    proc = _run([mpiexec, "-n", "1", *good, ":", "-n", "1", *bad], tmp_path, timeout=60)
    assert time.monotonic() - t0 < 60
    assert proc.returncode == 3, proc.stderr
    assert "rank 1: convnet train: error:" in proc.stderr and "Traceback" not in proc.stderr


def test_mismatched_ranks_fail_before_the_first_step_naming_rank_and_field(mpiexec, tmp_path):
    a = _convnet(*_train_argv("r", "--lr", "0.01"))
    b = _convnet(*_train_argv("r", "--lr", "0.02"))
    proc = _run([mpiexec, "-n", "1", *a, ":", "-n", "1", *b], tmp_path, timeout=60)
    assert proc.returncode == 10, proc.stderr
    assert "Rank 1 differs from rank 0 in config.lr" in proc.stderr
    assert proc.stderr.count("error:") == 1
    assert not (tmp_path / "r" / "last.safetensors").exists()


def _rank_pid(root_pid: int, rank: int) -> int | None:
    """The pid of the process of ``rank`` among the descendants of ``root_pid`` (PMI_RANK in its environment)."""
    todo, seen = [root_pid], []
    while todo:
        pid = todo.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
        seen += [int(c) for c in children]
    for pid in seen:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in env and b"python" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    return None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find a rank's pid")
def test_kill_9_of_a_rank_leaves_a_checkpoint_that_resumes(mpiexec, tmp_path):
    argv = _train_argv("r", "--epochs", "400", "--checkpoint-every", "2", "--batch", "32")
    proc = subprocess.Popen([mpiexec, "-n", "2", *_convnet(*argv)], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        last = tmp_path / "r" / "last.safetensors"
        deadline = time.monotonic() + 60
        while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert last.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint within 60 s"
        time.sleep(0.3)
        pid = _rank_pid(proc.pid, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    _, meta = load_checkpoint(last)
    assert meta["world_size"] == 2 and meta["step"] > 0
    # resume on one rank (one more epoch than it reached: quick) and it continues from the checkpoint
    epochs = str(meta["epoch"] + 1)
    argv = ["train", "--epochs", epochs, "--checkpoint-every", "2", "--batch", "32", "--quiet", "--out", "r", "--resume"]
    resumed = _run(_convnet(*argv), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "written by 2" in resumed.stderr
    _, after = load_checkpoint(last)
    assert after["step"] > meta["step"] and after["world_size"] == 1
