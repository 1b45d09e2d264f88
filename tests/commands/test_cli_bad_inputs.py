"""Issue 14: every subcommand driven through a table of bad inputs.

For each case: the exit status is the documented one (never 1, "a bug"), stderr holds no
traceback and one line of message, and no file that existed before the command changed.
The commands run in-process (``convnet.cli.main``) so the table stays fast; the cases that
need a real process (a full disk on stdout) run one.
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_workspace import SMALL, SRC, run_cli, ws  # noqa: F401  (ws is a fixture)


def _hashes(root: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


CASES = [
    # (id, argv, exit status, a phrase stderr must contain)
    # -- train: output folders
    ("train-out-is-a-file", ["train", "--arch", SMALL, "--out", "file.txt"], 8, "is a file"),
    ("train-out-holds-a-run", ["train", "--arch", SMALL, "--out", "run"], 8, "--resume"),
    ("train-out-under-a-file", ["train", "--arch", SMALL, "--out", "file.txt/sub"], 8, "file.txt"),
    ("train-resume-and-overwrite", ["train", "--resume", "--overwrite", "--out", "run"], 2, "--overwrite"),
    ("train-resume-nothing", ["train", "--arch", SMALL, "--resume", "--out", "empty"], 7, "no checkpoint"),
    ("train-resume-other-config", ["train", "--arch", SMALL, "--resume", "--out", "run", "--lr", "0.5",
                                   "--batch", "64"], 7, "lr"),
    # -- train: options speak as options
    ("train-epochs-zero", ["train", "--epochs", "0"], 2, "--epochs"),
    ("train-batch-negative", ["train", "--batch", "-1"], 2, "Option --batch"),
    ("train-val-fraction", ["train", "--val-fraction", "2"], 2, "--val-fraction"),
    ("train-epochs-not-a-number", ["train", "--epochs", "x"], 2, "--epochs"),
    ("train-unknown-model", ["train", "--model", "resnet2O_cifar"], 2, "Did you mean"),
    ("train-model-and-arch", ["train", "--model", "lenet5", "--arch", SMALL], 2, "not allowed"),
    ("train-pattern-syntax", ["train", "--arch", "INPUT[8x8x1] -> CONV3-8 ->"], 2, "pattern"),
    ("train-pattern-huge", ["train", "--arch", "INPUT[8x8x1] -> [CONV3-8]*99999999 -> FC-10"], 2, "layers"),
    ("train-pattern-floor-ceil", ["train", "--arch", "INPUT[8x8x1] -> CONV3-8/FLOOR/CEIL -> FC-10"], 2, "CEIL"),
    ("train-pattern-wrong-input", ["train", "--arch", "INPUT[9x9x1] -> CONV3-8 -> FC-10"], 2, "INPUT"),
    ("train-pattern-wrong-classes", ["train", "--arch", "INPUT[8x8x1] -> CONV3-8 -> FC-7"], 2, "FC-10"),
    # -- train: data
    ("train-data-missing", ["train", "--data", "npz:/no/such/file.npz"], 3, "does not exist"),
    ("train-data-unknown", ["train", "--data", "imagenet:/x"], 2, "--data"),
    ("train-data-mixed-sizes", ["train", "--data", "folder:mixed"], 3, "--image-size"),
    ("train-image-size-bad", ["train", "--data", "folder:mixed", "--image-size", "0x5"], 2, "--image-size"),
    ("train-image-size-digits", ["train", "--image-size", "8x8"], 2, "--image-size"),
    ("train-init-from-image", ["train", "--arch", SMALL, "--init-from", "digit.png"], 7, "PNG image"),
    ("train-over-budget", ["train", "--arch", SMALL, "--max-memory", "1KB"], 5, "budget"),
    ("train-budget-garbage", ["train", "--arch", SMALL, "--max-memory", "lots"], 2, "lots"),
    ("train-device-unknown", ["train", "--arch", SMALL, "--device", "tpu"], 2, "--device"),
    # -- evaluate
    ("evaluate-an-image", ["evaluate", "digit.png"], 7, "PNG image, not a checkpoint"),
    ("evaluate-missing", ["evaluate", "/no/such.safetensors"], 7, "does not exist"),
    ("evaluate-empty-folder", ["evaluate", "empty"], 7, "holds no checkpoint"),
    ("evaluate-nan-weights", ["evaluate", "nan.safetensors"], 7, "param/conv1.w"),
    ("evaluate-flipped-bytes", ["evaluate", "flipped.safetensors"], 6, "fc1"),
    ("evaluate-renamed-class", ["evaluate", "crun", "--data", "folder:renamed"], 2, "purple"),
    ("evaluate-device-unknown", ["evaluate", "run", "--device", "tpu"], 2, "--device"),
    ("evaluate-missing-class", ["evaluate", "crun", "--data", "folder:missing"], 2, "missing blue"),
    ("evaluate-data-folder-missing", ["evaluate", "crun", "--data", "folder:/no/such"], 3, "does not exist"),
    ("evaluate-image-size-digits", ["evaluate", "run", "--image-size", "8x8"], 2, "--image-size"),
    # -- predict
    ("predict-device-unknown", ["predict", "run", "digit.png", "--device", "tpu"], 2, "--device"),
    ("predict-show-is-a-file", ["predict", "run", "digit.png", "--show", "file.txt"], 8, "file.txt"),
    ("predict-dense-no-folder", ["predict", "run", "digit.png", "--dense", "/no/such/dir/heat.png"], 8,
     "/no/such/dir"),
    ("predict-dense-is-a-folder", ["predict", "run", "digit.png", "--dense", "empty"], 8, "is a folder"),
    ("predict-dense-not-fcn", ["predict", "run", "digit.png", "--dense", "heat.png"], 2, "convert"),
    ("predict-missing-image", ["predict", "run", "/no/such.png"], 3, "no such file"),
    ("predict-not-an-image", ["predict", "run", "notimage.png"], 3, "cannot be read"),
    ("predict-empty-folder", ["predict", "run", "empty"], 3, "no image files"),
    ("predict-nan-weights", ["predict", "nan.safetensors", "digit.png"], 7, "NaN"),
    ("predict-flipped-bytes", ["predict", "flipped.safetensors", "digit.png"], 6, "first layer"),
    ("predict-class-without-dense", ["predict", "run", "digit.png", "--class", "3"], 2, "--dense"),
    ("predict-top-zero", ["predict", "run", "digit.png", "--top", "0"], 2, "--top"),
    ("predict-checkpoint-is-image", ["predict", "digit.png", "digit.png"], 7, "PNG image"),
    # -- gradcheck
    ("gradcheck-no-directions", ["gradcheck", "lenet5", "--directions", "0"], 2, "--directions"),
    ("gradcheck-bad-input", ["gradcheck", "lenet5", "--input", "0x0x0"], 2, "--input"),
    ("gradcheck-geometry", ["gradcheck", "INPUT[10x10x1] -> CONV3-4/S2 -> FC-2"], 2, "/FLOOR"),
    # -- summary
    ("summary-unknown-model", ["summary", "vgg61"], 2, "Did you mean"),
    ("summary-batch-zero", ["summary", "vgg16", "--batch", "0"], 2, "--batch"),
    ("summary-budget-garbage", ["summary", "vgg16", "--budget", "12XB"], 2, "12XB"),
    ("summary-input-too-small", ["summary", "vgg16", "--input", "7x7x3"], 2, "7"),
    ("summary-pattern-syntax", ["summary", "INPUT[32x32x3] -> CONV3-8 ->"], 2, "pattern"),
    ("summary-missing-checkpoint", ["summary", "no/such.safetensors"], 7, "does not exist"),
    ("summary-image-as-checkpoint", ["summary", "notimage.safetensors"], 7, "does not exist"),
    ("summary-ranks-zero", ["summary", "vgg16", "--ranks", "0"], 2, "--ranks"),
    ("summary-ranks-over-batch", ["summary", "vgg16", "--ranks", "8"], 2, "global batch"),
    ("summary-bandwidth-garbage", ["summary", "vgg16", "--ranks", "2", "--batch", "2", "--bandwidth", "fast"], 2,
     "'fast'"),
    ("summary-bandwidth-without-ranks", ["summary", "vgg16", "--bandwidth", "25Gb/s"], 2, "--ranks"),
    # -- model files (ONNX)
    ("summary-garbage-onnx", ["summary", "garbage.onnx"], 3, "garbage.onnx"),
    ("summary-missing-onnx", ["summary", "no/such.onnx"], 7, "does not exist"),
    ("summary-unsupported-op", ["summary", "tanh.onnx"], 2, "Tanh"),
    ("predict-garbage-onnx", ["predict", "garbage.onnx", "digit.png"], 3, "garbage.onnx"),
    ("evaluate-onnx-without-data", ["evaluate", "tanh.onnx"], 2, "Tanh"),
    ("train-init-from-garbage-onnx", ["train", "--init-from", "garbage.onnx"], 3, "garbage.onnx"),
    ("convert-onnx-no-folder", ["convert", "run", "--to-onnx", "/no/such/dir/m.onnx"], 8, "/no/such/dir"),
    ("convert-onnx-onto-a-run-file", ["convert", "run", "--to-onnx", "run/metrics.json"], 8, "--overwrite"),
    # -- convert
    ("convert-an-image", ["convert", "digit.png", "--to-fully-conv", "--out", "f.safetensors"], 7, "PNG image"),
    ("convert-onto-itself", ["convert", "run/best.safetensors", "--to-fully-conv", "--out", "run/best.safetensors"],
     8, "being converted"),
    ("convert-onto-a-file", ["convert", "run", "--to-fully-conv", "--out", "file.txt"], 8, "--overwrite"),
    ("convert-no-folder", ["convert", "run", "--to-fully-conv", "--out", "/no/such/f.safetensors"], 8, "/no/such"),
    # -- demo and explore (pages)
    ("demo-stride-zero", ["demo", "conv", "--stride", "0"], 2, "--stride"),
    ("demo-stride-does-not-tile", ["demo", "conv", "--stride", "3"], 2, "not an integer"),
    ("demo-kernel-larger-than-input", ["demo", "conv", "--kernel", "7", "--padding", "0"], 2, "smaller than the filter"),
    ("demo-padding-negative", ["demo", "conv", "--padding", "-1"], 2, "--padding"),
    ("demo-depth-too-large", ["demo", "conv", "--depth", "99"], 2, "--depth"),
    ("demo-unknown", ["demo", "conv3d"], 2, "invalid choice"),
    ("demo-option-not-for-pool", ["demo", "pool", "--filters", "3"], 2, "--filters"),
    ("demo-out-no-folder", ["demo", "conv", "--out", "/no/such/dir/d.html"], 8, "/no/such/dir"),
    ("demo-out-is-a-folder", ["demo", "conv", "--out", "empty"], 8, "is a folder"),
    ("explore-missing-model", ["explore", "no/such.safetensors"], 7, "does not exist"),
    ("explore-unknown-model", ["explore", "vgg61"], 2, "Did you mean"),
    ("explore-out-no-folder", ["explore", "lenet5", "--out", "/no/such/dir/x.html"], 8, "/no/such/dir"),
    ("explore-not-an-image", ["explore", "run", "--image", "notimage.png", "--out", "e.html"], 3, "cannot be read"),
    ("explore-missing-image", ["explore", "run", "--image", "/no/such.png", "--out", "e.html"], 3, "no such file"),
    ("explore-flat-input", ["explore", "INPUT[64] -> FC-10", "--out", "e.html"], 2, "flat"),
    ("explore-input-on-checkpoint", ["explore", "run", "--input", "8x8x1", "--out", "e.html"], 2, "--input"),
]


def test_the_table_has_at_least_forty_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, status, phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(ws, argv, status, phrase, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    before = _hashes(ws)
    code, out, err = run_cli(argv, capsys)
    assert code == status, f"exit {code}, expected {status}\nstdout: {out}\nstderr: {err}"
    assert code != 1
    assert "Traceback" not in err and "Warning:" not in err
    lines = [l for l in err.splitlines() if l.strip()]
    # one line; a pattern error may add the pattern and a caret under the place it points at
    caret = len(lines) == 3 and set(lines[2].strip()) == {"^"}
    assert len(lines) == 1 or caret, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith(f"convnet {argv[0]}: error: "), lines[0]
    assert phrase in lines[0], f"{phrase!r} not in {lines[0]!r}"
    after = _hashes(ws)
    changed = [str(p.relative_to(ws)) for p in before if after.get(p) != before[p]]
    assert not changed, f"files changed or removed: {changed}"


def test_one_bad_image_in_a_list_does_not_stop_the_others(ws, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    code, out, err = run_cli(["predict", "run", "notimage.png", "digit.png", "/no/such.png"], capsys)
    assert code == 3
    assert "digit.png: " in out and "notimage.png" not in out
    assert "notimage.png" in err and "/no/such.png" in err and "2 of 3" in err
    assert "Traceback" not in err


def test_a_full_disk_on_stdout_is_one_line_and_exit_8(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "convnet", "summary", "vgg16", "--format", "json"],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert proc.returncode == 8, proc.stderr
    assert proc.stderr.strip() == "convnet summary: error: cannot write the output: the disk is full."


def test_usage_errors_are_one_line_with_status_2(capsys):
    code, _, err = run_cli(["train", "--nope"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--help" in err
