"""CIFAR-10, binary version and python version, from a folder the user names.

Binary version (``cifar-10-batches-bin``): ``data_batch_1.bin`` .. ``data_batch_5.bin``
and ``test_batch.bin``, each a run of 3073-byte records — 1 label byte (0..9)
then 3072 pixel bytes, planar: 1024 red, 1024 green, 1024 blue, each 32×32 row
major.  Class names from ``batches.meta.txt`` when present.

Python version (``cifar-10-batches-py``): ``data_batch_1`` .. ``data_batch_5`` and
``test_batch``, each a pickled dict ``{b'data': uint8 array (N, 3072), b'labels':
[N ints], b'batch_label': ..., b'filenames': [...]}``, read ONLY with the
restricted unpickler of :mod:`convnet.data.safe_pickle` (no code runs); class
names from ``batches.meta`` (``label_names``).

``load_cifar10(folder)`` accepts the batches folder itself or its parent, prefers
the binary version when both are present, and returns ``(train, test)``:
NHWC float32 ``(N, 32, 32, 3)`` in [0, 1] (``value / 255``), int64 labels.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ._io import DEFAULT_MAX_BYTES, check_max_bytes, file_size, require_dir, require_file
from .dataset import Dataset
from .safe_pickle import restricted_loads

__all__ = ["CIFAR10_CLASSES", "RECORD_BYTES", "parse_cifar_binary", "read_cifar_binary_batch",
           "read_cifar_python_batch", "load_cifar10"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_BYTES = 32 * 32 * 3
RECORD_BYTES = 1 + IMAGE_BYTES


def _planar_to_nhwc(flat: np.ndarray) -> np.ndarray:
    """``(N, 3072)`` planar CHW bytes -> ``(N, 32, 32, 3)`` uint8."""
    return np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _check_labels(labels: np.ndarray, source) -> None:
    if labels.size and int(labels.max()) >= len(CIFAR10_CLASSES):
        i = int(np.argmax(labels >= len(CIFAR10_CLASSES)))
        raise DataFormatError(f"{source}: record {i} has label {int(labels[i])}; CIFAR-10 labels are 0..9.")


def parse_cifar_binary(data: bytes, *, source="<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 32, 32, 3), labels int64 (N,))`` from the bytes of one binary batch."""
    n, rest = divmod(len(data), RECORD_BYTES)
    if rest or n == 0:
        raise DataFormatError(f"{source}: {len(data)} bytes is not a positive multiple of the {RECORD_BYTES}-byte "
                              f"CIFAR-10 record (1 label byte + 3072 pixel bytes).")
    records = np.frombuffer(data, dtype=np.uint8).reshape(n, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    _check_labels(labels, source)
    return _planar_to_nhwc(records[:, 1:]), labels


def read_cifar_binary_batch(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``*.bin`` batch (size checked against ``max_bytes`` before reading)."""
    path = require_file(path, what="CIFAR-10 batch")
    size = file_size(path)
    if size > check_max_bytes(max_bytes):
        raise DataFormatError(f"{path}: {size} bytes, above the cap of {max_bytes} bytes.")
    if size % RECORD_BYTES or size == 0:
        raise DataFormatError(f"{path}: {size} bytes is not a positive multiple of the {RECORD_BYTES}-byte "
                              f"CIFAR-10 record (1 label byte + 3072 pixel bytes).")
    return parse_cifar_binary(path.read_bytes(), source=path)


def _get(d: dict, key: str):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    return None


def parse_cifar_python(data: bytes, *, source="<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` from the bytes of one pickled python batch (restricted unpickler)."""
    batch = restricted_loads(data, source=source)
    if not isinstance(batch, dict):
        raise DataFormatError(f"{source}: expected a pickled dict; received {type(batch).__name__}.")
    flat, labels = _get(batch, "data"), _get(batch, "labels")
    if not isinstance(flat, np.ndarray) or flat.dtype != np.uint8 or flat.ndim != 2 or flat.shape[1] != IMAGE_BYTES:
        raise DataFormatError(f"{source}: 'data' must be a uint8 array of shape (N, {IMAGE_BYTES}); received "
                              f"{getattr(flat, 'dtype', type(flat).__name__)} {getattr(flat, 'shape', '')}.")
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        labels = labels.astype(np.int64)
    elif isinstance(labels, list) and all(type(v) is int for v in labels):
        labels = np.array(labels, dtype=np.int64) if labels else np.zeros(0, np.int64)
    else:
        raise DataFormatError(f"{source}: 'labels' must be a list of integers; received {type(labels).__name__}.")
    if len(labels) != len(flat):
        raise DataFormatError(f"{source}: 'data' has {len(flat)} images but 'labels' has {len(labels)} entries.")
    if labels.size and int(labels.min()) < 0:
        raise DataFormatError(f"{source}: labels must be 0..9; found {int(labels.min())}.")
    _check_labels(labels, source)
    return _planar_to_nhwc(flat), labels


def read_cifar_python_batch(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled python batch with the restricted unpickler."""
    path = require_file(path, what="CIFAR-10 batch")
    size = file_size(path)
    if size > check_max_bytes(max_bytes):
        raise DataFormatError(f"{path}: {size} bytes, above the cap of {max_bytes} bytes.")
    return parse_cifar_python(path.read_bytes(), source=path)


def _batches(folder: Path, suffix: str) -> list[Path]:
    pattern = re.compile(r"^data_batch_(\d+)" + re.escape(suffix) + "$")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def _classes_binary(folder: Path) -> tuple[str, ...]:
    meta = folder / "batches.meta.txt"
    if meta.is_file() and meta.stat().st_size < 65536:
        names = [ln.strip() for ln in meta.read_text("utf-8", errors="replace").splitlines() if ln.strip()]
        if len(names) == len(CIFAR10_CLASSES):
            return tuple(names)
    return CIFAR10_CLASSES


def _classes_python(folder: Path) -> tuple[str, ...]:
    meta = folder / "batches.meta"
    if meta.is_file() and meta.stat().st_size < 1 << 20:
        d = restricted_loads(meta.read_bytes(), source=meta)
        names = _get(d, "label_names") if isinstance(d, dict) else None
        if isinstance(names, list) and len(names) == len(CIFAR10_CLASSES):
            return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names)
    return CIFAR10_CLASSES


def _resolve(folder: Path) -> tuple[Path, str]:
    for cand in (folder, folder / "cifar-10-batches-bin", folder / "cifar-10-batches-py"):
        if (cand / "test_batch.bin").is_file():
            return cand, "bin"
        if (cand / "test_batch").is_file():
            return cand, "py"
    raise DataFormatError(f"CIFAR-10 folder {folder} has neither test_batch.bin (binary version) nor test_batch "
                          f"(python version), nor a cifar-10-batches-bin/-py sub-folder with one.")


def _dataset(parts, classes, name, source) -> Dataset:
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / np.float32(255.0)
    y = np.concatenate([p[1] for p in parts])
    return Dataset(x, y, classes, name, str(source))


def load_cifar10(folder, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from a CIFAR-10 folder (binary or python version)."""
    folder, kind = _resolve(require_dir(folder, what="CIFAR-10 folder"))
    suffix = ".bin" if kind == "bin" else ""
    read = read_cifar_binary_batch if kind == "bin" else read_cifar_python_batch
    train_files = _batches(folder, suffix)
    if not train_files:
        raise DataFormatError(f"CIFAR-10 folder {folder} has test_batch{suffix} but no data_batch_1{suffix}.")
    classes = _classes_binary(folder) if kind == "bin" else _classes_python(folder)
    train = _dataset([read(p, max_bytes=max_bytes) for p in train_files], classes, "cifar10/train", folder)
    test = _dataset([read(folder / f"test_batch{suffix}", max_bytes=max_bytes)], classes, "cifar10/test", folder)
    return train, test
