"""digits, image folders, npz archives and the --data spec."""
import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from convnet.data import Dataset, load, load_digits, load_image_folder, load_npz, parse_spec
from convnet.errors import ConfigError, DataFormatError, DTypeError, SecurityError, ShapeError


# ---- digits --------------------------------------------------------------------------------------

def test_digits_split_is_deterministic_stratified_and_complete():
    from sklearn.datasets import load_digits as sk

    train, test = load_digits()
    assert train.x.shape == (1442, 8, 8, 1) and test.x.shape == (355, 8, 8, 1)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.x.min() == 0.0 and train.x.max() == 1.0
    raw = sk()
    # rule: within each class, in file order, every 5th image is test
    test_idx = np.sort(np.concatenate([np.flatnonzero(raw.target == c)[4::5] for c in range(10)]))
    np.testing.assert_array_equal(test.x[..., 0], (raw.images[test_idx] / 16).astype(np.float32))
    np.testing.assert_array_equal(test.y, raw.target[test_idx])
    assert np.bincount(test.y).min() >= 34  # stratified: 34..36 per digit
    again, _ = load("digits")
    np.testing.assert_array_equal(again.x, train.x)


def test_dataset_validation():
    x = np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(DTypeError):
        Dataset(x.astype(np.float64), np.zeros(2, np.int64), ("a",))
    with pytest.raises(ShapeError):
        Dataset(x[0], np.zeros(2, np.int64), ("a",))
    with pytest.raises(ShapeError, match="2 images but 3 labels"):
        Dataset(x, np.zeros(3, np.int64), ("a",))
    with pytest.raises(ConfigError, match="labels must lie"):
        Dataset(x, np.array([0, 1]), ("a",))


# ---- image folders -------------------------------------------------------------------------------

def save_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_image_folder_train_test_layout(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {}
    for split in ("train", "test"):
        for cls in ("dog", "cat"):
            for i in range(3 if split == "train" else 1):
                arr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)  # H=5, W=7: catches swapped axes
                save_png(tmp_path / split / cls / f"{i}.png", arr)
                imgs[(split, cls, i)] = arr
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "cat" / ".hidden.png").write_bytes(b"junk")
    train, test = load(f"folder:{tmp_path}")
    assert train.classes == ("cat", "dog") and train.x.shape == (6, 5, 7, 3) and test.x.shape == (2, 5, 7, 3)
    np.testing.assert_array_equal(train.y, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(train.x[0], imgs[("train", "cat", 0)] / np.float32(255))
    np.testing.assert_array_equal(test.x[1], imgs[("test", "dog", 0)] / np.float32(255))


def test_image_folder_flat_layout_grey_and_resize(tmp_path):
    for cls in ("a", "b"):
        for i in range(5):
            save_png(tmp_path / cls / f"{i}.png", np.full((4, 4), 10 * i, np.uint8))
    save_png(tmp_path / "b" / "big.png", np.full((8, 6), 255, np.uint8))
    with pytest.raises(DataFormatError, match="differ in size"):
        load_image_folder(tmp_path)
    train, test = load(f"folder:{tmp_path}", image_size=(4, 4))
    assert train.x.shape[1:] == (4, 4, 1) and len(train) + len(test) == 11
    assert test.x.shape[0] == 2  # every 5th image of each class
    np.testing.assert_allclose(test.x[0], 40 / 255, rtol=1e-6)


def test_image_folder_errors(tmp_path):
    save_png(tmp_path / "a" / "0.png", np.zeros((30, 30), np.uint8))
    with pytest.raises(DataFormatError, match="above the cap of 100"):
        load_image_folder(tmp_path, max_pixels=100)
    (tmp_path / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataFormatError, match="1.png"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no class sub-folders"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(ConfigError, match="image_size"):
        load_image_folder(tmp_path, image_size=(0, 3))


def test_truncated_image_is_a_format_error(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)).save(buf, format="PNG")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(DataFormatError, match="x.png"):
        load_image_folder(tmp_path)


# ---- npz -----------------------------------------------------------------------------------------

def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    xtr, xte = rng.integers(0, 256, (6, 3, 4), dtype=np.uint8), rng.integers(0, 256, (2, 3, 4), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x_train=xtr, y_train=np.arange(6) % 3, x_test=xte, y_test=np.array([2, 0]),
             classes=np.array(["r", "g", "b"]))
    train, test = load(f"npz:{tmp_path / 'a.npz'}")
    assert train.x.shape == (6, 3, 4, 1) and train.classes == ("r", "g", "b")
    np.testing.assert_array_equal(test.x[..., 0], xte / np.float32(255))
    np.testing.assert_array_equal(test.y, [2, 0])
    xf = rng.random((10, 2, 2, 3)).astype(np.float64)
    np.savez_compressed(tmp_path / "b.npz", images=xf, labels=np.arange(10) % 2)
    train, test = load_npz(tmp_path / "b.npz")
    assert len(train) == 8 and len(test) == 2 and train.x.dtype == np.float32
    np.testing.assert_array_equal(test.x, xf[[8, 9]].astype(np.float32))


def _npz_with_member(path, name, payload: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name, payload)


@pytest.mark.parametrize("make,error,problem", [
    (lambda p: np.savez(p, x=np.zeros((2, 2, 2)), y=np.zeros(3, np.int64)), DataFormatError, "2 images but"),
    (lambda p: np.savez(p, a=np.zeros(2)), DataFormatError, "include neither"),
    (lambda p: np.savez(p, x=np.full((2, 2, 2), np.nan), y=np.zeros(2, np.int64)), DataFormatError, "NaN"),
    (lambda p: np.savez(p, x=np.zeros((2, 2, 2), np.int32), y=np.zeros(2, np.int64)), DataFormatError, "dtype int32"),
    (lambda p: np.savez(p, x=np.zeros((2, 2, 2)), y=np.array([0.0, 1.0])), DataFormatError, "1-d integers"),
    (lambda p: np.savez(p, x=np.zeros((2, 2)), y=np.zeros(2, np.int64)), DataFormatError, r"\(N, H, W\)"),
    (lambda p: np.savez(p, x=np.zeros((2, 2, 2)), y=np.array([0, -1])), DataFormatError, "negative"),
    (lambda p: p.write_bytes(b"not a zip at all"), DataFormatError, "not a readable .npz"),
    (lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, np.int64)), SecurityError,
     "object array"),
])
def test_npz_problems(tmp_path, make, error, problem):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(error, match=problem):
        load_npz(path)


def test_npz_size_claim_checked_before_loading(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (2 ** 40, 28)})
    path = tmp_path / "claim.npz"
    _npz_with_member(path, "x.npy", buf.getvalue() + b"\0" * 64)
    with pytest.raises(DataFormatError, match="header claims shape"):
        load_npz(path)
    with pytest.raises(DataFormatError, match="above the cap of 10 bytes"):
        np.savez(tmp_path / "ok.npz", x=np.zeros((2, 2, 2)), y=np.zeros(2, np.int64))
        load_npz(tmp_path / "ok.npz", max_bytes=10)


# ---- spec ----------------------------------------------------------------------------------------

def test_parse_spec():
    assert parse_spec("digits") == ("digits", None)
    assert parse_spec("MNIST:/data/m") == ("mnist", "/data/m")
    assert parse_spec("npz:C:/x.npz") == ("npz", "C:/x.npz")
    assert parse_spec("cifar10:~/c") == ("cifar10", os.path.expanduser("~/c"))
    for bad, problem in [("imagenet:/x", "unknown format 'imagenet'"), ("mnist", "needs a path"),
                         ("", "must be a string"), ("digits:/x", "takes no path")]:
        with pytest.raises(ConfigError, match=problem):
            parse_spec(bad)
    with pytest.raises(ConfigError, match="image_size"):
        load("digits", image_size=(8, 8))
    with pytest.raises(DataFormatError, match="does not exist"):
        load("cifar10:/no/such/folder")
