"""A workspace a user might have, shared by the CLI tests: a trained digits run, a run on a
folder of colour images, images, and broken files."""
import os
from pathlib import Path

import numpy as np
import pytest

from convnet.cli import main
from convnet.train.checkpoint import load_checkpoint, save_checkpoint

SMALL = "INPUT[8x8x1] -> CONV3-4 -> RELU -> POOL2 -> FC-10"
COLOURS = {"blue": (0.1, 0.2, 0.9), "green": (0.1, 0.8, 0.2), "red": (0.9, 0.1, 0.1)}
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _png(path: Path, array) -> Path:
    from PIL import Image

    a = np.clip(np.round(np.asarray(array) * 255), 0, 255).astype(np.uint8)
    Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a).save(path)
    return path


def _colour_folder(root: Path, names, *, size=(8, 8), n=5, seed=0) -> Path:
    """root/{train,test}/<class>/*.png: flat colour images with a little noise (learnable at once)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for name in names:
            folder = root / split / name
            folder.mkdir(parents=True)
            rgb = COLOURS.get(name, (0.1, 0.2, 0.9))
            for i in range(n):
                _png(folder / f"{i}.png", np.clip(np.array(rgb) + 0.05 * rng.standard_normal((*size, 3)), 0, 1))
    return root


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace a user might have: a trained digits run, a colour-folder run, images, broken files."""
    root = tmp_path_factory.mktemp("ws")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["train", "--arch", SMALL, "--epochs", "1", "--batch", "64", "--quiet", "--out", "run"]) == 0
        _colour_folder(root / "colours", ["blue", "green", "red"])
        assert main(["train", "--data", "folder:colours", "--arch", "INPUT[8x8x3] -> CONV3-4 -> RELU -> FC-3",
                     "--epochs", "3", "--batch", "4", "--val-fraction", "0.2", "--quiet", "--out", "crun"]) == 0
    finally:
        os.chdir(cwd)
    _colour_folder(root / "renamed", ["green", "purple", "red"])
    _colour_folder(root / "missing", ["green", "red"])
    mixed = _colour_folder(root / "mixed", ["blue", "green"])
    _png(mixed / "train" / "blue" / "9.png", np.zeros((12, 10, 3)))
    from convnet.data import load_digits

    _, test = load_digits()
    _png(root / "digit.png", test.x[0])
    _png(root / "photo.png", np.random.default_rng(1).random((240, 320, 3)))
    (root / "notimage.png").write_text("this is not an image\n")
    (root / "garbage.onnx").write_bytes(b"\x08\x07 not a protobuf \xff\xfe" * 20)
    _onnx_with_tanh(root / "tanh.onnx")
    (root / "file.txt").write_text("a file, not a folder\n")
    (root / "empty").mkdir()
    tensors, meta = load_checkpoint(root / "run" / "best.safetensors")
    nan = dict(tensors)
    nan["param/conv1.w"] = np.full_like(tensors["param/conv1.w"], np.nan)
    save_checkpoint(root / "nan.safetensors", nan, meta)
    flipped = dict(tensors)  # exponent bits set: huge but finite weights that overflow in the GEMM
    w = tensors["param/fc1.w"].copy()
    w.view(np.uint8)[3::4] = (w.view(np.uint8)[3::4] & 0x80) | 0x7E  # exponent 2^125..2^127
    flipped["param/fc1.w"] = w
    save_checkpoint(root / "flipped.safetensors", flipped, meta)
    return root


def _onnx_with_tanh(path: Path) -> None:
    """A valid ONNX model with an op convnet does not import (Tanh)."""
    from oracle import require_module

    onnx = require_module("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"], name="squash")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def run_cli(argv, capsys):
    """``(status, stdout, stderr)`` of ``convnet ARGV`` run in-process."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err
