"""The IDX format (MNIST, Fashion-MNIST), raw or gzip-compressed.

Layout (big-endian)::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d (1..8)
    4·d bytes   the dimensions, unsigned 32-bit each
    rest        prod(dims) elements, C order

Checks, in order, each a DataFormatError naming the file: the magic bytes, the
type code, d, the dimension words being present; then — before anything is
allocated — ``prod(dims) * itemsize`` must equal the bytes after the header
exactly (raw files), be below ``max_bytes``, and (gzip files) be below
``GZIP_MAX_RATIO`` × the compressed size; finally a gzip stream must hold exactly
that many bytes.

``load_mnist(folder)`` reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (also ``train-images.idx3-ubyte``
spellings, each optionally ``.gz``) into NHWC float32 ``(N, 28, 28, 1)`` in
[0, 1] (``value / 255``) and int64 labels.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ._io import (DEFAULT_MAX_BYTES, GZIP_ERRORS, GZIP_MAX_RATIO, check_max_bytes, file_size, open_maybe_gzip,
                  read_exact, read_into, require_dir, require_file)
from .dataset import Dataset

__all__ = ["IDX_TYPES", "read_idx", "read_idx_stream", "load_mnist"]

IDX_TYPES = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
MAX_IDX_DIMS = 8


def read_idx_stream(f, *, source, available: int | None = None, compressed_size: int | None = None,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Parse an IDX array from the binary stream ``f``.

    ``available`` is the total byte size of an uncompressed stream (exact size
    check); ``compressed_size`` the size of a gzip file (ratio check).  Returns a
    native-endian array of shape ``dims``.
    """
    magic = read_exact(f, 4, source=source, what="the 4-byte IDX magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise DataFormatError(f"{source}: not an IDX file; the magic number {magic.hex()} must start with two zero bytes.")
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        raise DataFormatError(f"{source}: unknown IDX element type 0x{code:02x}; expected one of "
                              f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)}.")
    if not 1 <= ndim <= MAX_IDX_DIMS:
        raise DataFormatError(f"{source}: IDX header says {ndim} dimensions; expected 1..{MAX_IDX_DIMS}.")
    dims = struct.unpack(f">{ndim}I", read_exact(f, 4 * ndim, source=source, what=f"the {ndim} IDX dimensions"))
    dtype = IDX_TYPES[code]
    header = 4 + 4 * ndim
    nbytes = math.prod(dims) * dtype.itemsize
    claim = f"dims {'x'.join(map(str, dims))} of {dtype.name} need {nbytes} bytes of data"
    if available is not None and nbytes != available - header:
        remain = available - header
        if nbytes > remain:
            raise DataFormatError(f"{source}: header claims {claim} but only {remain} bytes follow the header.")
        raise DataFormatError(f"{source}: header claims {claim} but {remain} bytes follow the header "
                              f"({remain - nbytes} trailing bytes).")
    if compressed_size is not None and nbytes > GZIP_MAX_RATIO * compressed_size:
        raise DataFormatError(f"{source}: header claims {claim}, more than a {compressed_size}-byte gzip file "
                              f"can expand to.")
    if nbytes > max_bytes:
        raise DataFormatError(f"{source}: header claims {claim}, above the cap of {max_bytes} bytes "
                              f"(pass a larger `max_bytes` to allow it).")
    arr = np.empty(dims, dtype=dtype)
    read_into(f, arr, source=source, what=f"the IDX data ({claim})")
    if available is None and f.read(1):
        raise DataFormatError(f"{source}: more data follows the {nbytes} bytes the header describes ({claim}).")
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


def read_idx(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip, told apart by the gzip magic bytes)."""
    max_bytes = check_max_bytes(max_bytes)
    path = require_file(path, what="IDX file")
    size = file_size(path)
    compressed = False
    try:
        f, compressed = open_maybe_gzip(path)
        with f:
            if compressed:
                return read_idx_stream(f, source=path, compressed_size=size, max_bytes=max_bytes)
            return read_idx_stream(f, source=path, available=size, max_bytes=max_bytes)
    except DataFormatError:
        raise
    except GZIP_ERRORS as exc:  # EOFError, zlib.error, BadGzipFile, other OSError
        what = "damaged gzip stream" if compressed else "read error"
        raise DataFormatError(f"{path}: {what} ({type(exc).__name__}: {exc}).") from None


_STEMS = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find(folder: Path, split: str, kind: str) -> Path:
    stems = _STEMS[(split, kind)]
    for stem in stems:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise DataFormatError(f"MNIST folder {folder} has no {split} {kind} file; expected {stems[0]} "
                          f"(or {stems[0]}.gz).")


def _load_split(folder: Path, split: str, max_bytes: int) -> Dataset:
    ipath, lpath = _find(folder, split, "images"), _find(folder, split, "labels")
    images = read_idx(ipath, max_bytes=max_bytes)
    labels = read_idx(lpath, max_bytes=max_bytes)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFormatError(f"{ipath}: expected uint8 images with 3 dimensions (N, H, W); received "
                              f"{images.dtype} with shape {images.shape}.")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataFormatError(f"{lpath}: expected uint8 labels with 1 dimension; received {labels.dtype} "
                              f"with shape {labels.shape}.")
    if len(images) != len(labels):
        raise DataFormatError(f"{ipath.name} has {len(images)} images but {lpath.name} has {len(labels)} labels "
                              f"(folder {folder}).")
    num_classes = max(10, int(labels.max()) + 1) if len(labels) else 10
    x = (images.astype(np.float32) / np.float32(255.0))[..., None]
    return Dataset(x, labels.astype(np.int64), tuple(str(c) for c in range(num_classes)), f"mnist/{split}", str(ipath))


def load_mnist(folder, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from an MNIST-format folder."""
    folder = require_dir(folder, what="MNIST folder")
    max_bytes = check_max_bytes(max_bytes)
    return _load_split(folder, "train", max_bytes), _load_split(folder, "test", max_bytes)
