"""``.npz`` archives of arrays (``numpy.savez``), read with ``allow_pickle=False``.

Keys understood (first match wins):

* ``x_train, y_train, x_test, y_test`` — the two sets as given (Keras' ``mnist.npz`` layout);
* ``x, y`` or ``images, labels`` — one set, split with holdout_split (every 5th
  sample of each class is test).

An optional ``classes`` array of strings names the classes (else ``"0"``, ``"1"``, ...).

Images: ``(N, H, W)`` (one channel is added) or ``(N, H, W, C)`` — NHWC.  uint8
values become float32 ``value / 255``; float values are kept (as float32) and
must be finite.  Labels: a 1-d integer array of non-negative values.

Before ``numpy.load`` runs, every member's ``.npy`` header is read and its
``prod(shape) * itemsize`` checked against the member's size, a cap and the
compression ratio; object arrays (pickles) raise SecurityError.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format

from ..errors import DataFormatError, SecurityError
from ._io import DEFAULT_MAX_BYTES, GZIP_MAX_RATIO, check_max_bytes, require_file
from .dataset import Dataset, holdout_split

__all__ = ["load_npz", "read_npz_arrays"]


def _member_header(f, version):
    if version == (1, 0):
        return npy_format.read_array_header_1_0(f)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(f)
    raise ValueError(f"unsupported .npy format version {version}")


def _check_members(path: Path, zf: zipfile.ZipFile, max_bytes: int) -> None:
    total = 0
    for info in zf.infolist():
        if info.is_dir():
            continue
        where = f"{path} (member {info.filename})"
        total += info.file_size
        if info.file_size > max_bytes or total > max_bytes:
            raise DataFormatError(f"{where}: claims {info.file_size} bytes uncompressed, above the cap of "
                                  f"{max_bytes} bytes in all.")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > GZIP_MAX_RATIO * info.compress_size + 4096:
            raise DataFormatError(f"{where}: claims {info.file_size} bytes from {info.compress_size} compressed "
                                  f"bytes, more than compression can produce.")
        if not info.filename.endswith(".npy"):
            continue
        with zf.open(info) as f:
            version = npy_format.read_magic(f)
            shape, _fortran, dtype = _member_header(f, version)
            header_bytes = f.tell()
        if dtype.hasobject:
            raise SecurityError(f"{where}: holds an object array (dtype {dtype}), which only a pickle can restore; "
                                f"refusing to load it.")
        need = math.prod(shape) * dtype.itemsize
        if header_bytes + need != info.file_size:
            raise DataFormatError(f"{where}: header claims shape {shape} of {dtype} = {need} bytes but the member "
                                  f"holds {info.file_size - header_bytes} bytes of data.")


def read_npz_arrays(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, validated first, loaded with ``allow_pickle=False``."""
    path = require_file(path, what="npz file")
    max_bytes = check_max_bytes(max_bytes)
    try:
        with zipfile.ZipFile(path) as zf:
            _check_members(path, zf, max_bytes)
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (DataFormatError, SecurityError):
        raise
    except Exception as exc:  # BadZipFile, ValueError from the .npy header, EOFError, OSError, zlib.error ...
        raise DataFormatError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {str(exc)[:120]}).") from None


def _images(path, key: str, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataFormatError(f"{path}: array {key!r} has shape {x.shape}; expected (N, H, W) or (N, H, W, C).")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind == "f":
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DataFormatError(f"{path}: array {key!r} holds NaN or infinite values.")
        return x
    raise DataFormatError(f"{path}: array {key!r} has dtype {x.dtype}; expected uint8 or float images.")


def _labels(path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataFormatError(f"{path}: array {key!r} has shape {y.shape} and dtype {y.dtype}; expected 1-d integers.")
    if len(y) != n:
        raise DataFormatError(f"{path}: {n} images but array {key!r} has {len(y)} labels.")
    if y.size and y.min() < 0:
        raise DataFormatError(f"{path}: array {key!r} holds the negative label {y.min()}.")
    return y.astype(np.int64)


def load_npz(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from an ``.npz`` file (see the module docstring for the keys)."""
    arrays = read_npz_arrays(path, max_bytes=max_bytes)
    path = Path(path)
    if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
        pairs = [("x_train", "y_train", "train"), ("x_test", "y_test", "test")]
    elif {"x", "y"} <= set(arrays):
        pairs = [("x", "y", None)]
    elif {"images", "labels"} <= set(arrays):
        pairs = [("images", "labels", None)]
    else:
        raise DataFormatError(f"{path}: keys {sorted(arrays)} include neither x_train/y_train/x_test/y_test, "
                              f"x/y nor images/labels.")
    parts = []
    for xk, yk, split in pairs:
        x = _images(path, xk, arrays[xk])
        parts.append((x, _labels(path, yk, arrays[yk], len(x)), split))
    top = max((int(y.max()) for _, y, _ in parts if y.size), default=0)
    if "classes" in arrays:
        names = arrays["classes"]
        if names.ndim != 1 or names.dtype.kind not in "US" or len(names) <= top:
            raise DataFormatError(f"{path}: array 'classes' must be a 1-d string array with more than {top} "
                                  f"entries; received {names.dtype} {names.shape}.")
        classes = tuple(str(n) for n in names)
    else:
        classes = tuple(str(i) for i in range(top + 1))
    sets = [Dataset(x, y, classes, f"{path.stem}/{split}" if split else path.stem, str(path)) for x, y, split in parts]
    if len(sets) == 2:
        if sets[0].image_shape != sets[1].image_shape:
            raise DataFormatError(f"{path}: x_train images are {sets[0].image_shape} but x_test images are "
                                  f"{sets[1].image_shape}.")
        return sets[0], sets[1]
    return holdout_split(sets[0])
