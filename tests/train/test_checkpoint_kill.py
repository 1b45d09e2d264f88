"""kill -9 in the middle of saving: the last complete checkpoint always loads, no partial file has a final name.

A child process saves checkpoints in a loop (1 MiB of tensors each, keeping the
last three, like a trainer's retention); the parent SIGKILLs it at a random
moment, 20 times, each time resuming numbering from the latest checkpoint.
"""
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convnet.train import latest_checkpoint, load_checkpoint, remove_stale_temporaries

SRC = str(Path(__file__).resolve().parents[2] / "src")

CHILD = r"""
import sys
import numpy as np
from convnet.train.checkpoint import checkpoint_path, latest_checkpoint, save_checkpoint

folder = sys.argv[1]
last = latest_checkpoint(folder)
step = 0 if last is None else int(last.name[5:13]) + 1
announced = False
while True:
    w = np.full(262144, step, dtype=np.int32)                       # 1 MiB
    slots = np.full(1000, step, dtype=np.float64)
    save_checkpoint(checkpoint_path(folder, step), {"w": w, "optim/m/w": slots, "step": np.array(step)},
                    {"step": step, "rng": np.random.default_rng(step).bit_generator.state})
    old = checkpoint_path(folder, step - 3)
    if old.exists():
        old.unlink()
    if not announced:
        print("saved", flush=True)
        announced = True
    step += 1
"""

FINAL = re.compile(r"^ckpt-(\d{8})\.safetensors$")


def _check_folder(folder: Path) -> int:
    """Every final-named file loads and holds what its step says; return the latest step."""
    steps = []
    for p in folder.iterdir():
        m = FINAL.match(p.name)
        if not m:
            assert p.name.startswith(".ckpt-") and p.name.endswith(".tmp"), p.name  # only hidden temporaries
            continue
        step = int(m.group(1))
        tensors, meta = load_checkpoint(p)  # raises if partial or corrupt
        assert meta["step"] == step and int(tensors["step"]) == step
        assert tensors["w"].shape == (262144,) and (tensors["w"] == step).all()
        assert (tensors["optim/m/w"] == step).all()
        steps.append(step)
    assert steps, "no complete checkpoint survived"
    latest = latest_checkpoint(folder)
    assert int(latest.name[5:13]) == max(steps)
    return max(steps)


@pytest.mark.slow
def test_kill_during_saves_never_leaves_a_partial_final_file(tmp_path):
    rnd = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    previous, saw_temporary = -1, 0
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, env=env)
        try:
            assert child.stdout.readline().strip() == b"saved"
            time.sleep(rnd.uniform(0.0, 0.03))
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        saw_temporary += any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
        latest = _check_folder(tmp_path)
        assert latest > previous  # progress: at least one new save completed each round
        previous = latest
    remove_stale_temporaries(tmp_path)
    assert all(FINAL.match(p.name) for p in tmp_path.iterdir())
    print(f"kills that left a temporary file (caught mid-save): {saw_temporary}/20")
