"""Shared file helpers for the parsers: size caps, exact reads, gzip with bounds.

Every parser checks what a file *claims* (``prod(shape) * itemsize``) against
what the file can back and against a cap BEFORE allocating; these helpers are
where that happens.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError

#: default cap on the bytes one data file may make us allocate (2 GiB)
DEFAULT_MAX_BYTES = 2 * 1024 ** 3

#: DEFLATE cannot expand data by more than about 1032:1; a gzip member claiming more is impossible
GZIP_MAX_RATIO = 1100

GZIP_MAGIC = b"\x1f\x8b"


def check_max_bytes(max_bytes) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes <= 0:
        raise ConfigError(f"Argument `max_bytes` must be a positive integer; received {max_bytes!r}.")
    return int(max_bytes)


def require_file(path, *, what: str) -> Path:
    """``path`` as a Path, or DataFormatError when it is not an existing regular file."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{what} {p} does not exist or is not a regular file.")
    return p


def require_dir(path, *, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise DataFormatError(f"{what} {p} does not exist or is not a folder.")
    return p


def read_exact(f, n: int, *, source, what: str) -> bytes:
    """Read exactly ``n`` bytes or raise DataFormatError naming ``source`` and ``what`` was being read."""
    data = f.read(n)
    if len(data) != n:
        raise DataFormatError(f"{source}: file ended while reading {what} ({len(data)} of {n} bytes).")
    return data


def read_into(f, arr: np.ndarray, *, source, what: str) -> None:
    """Fill the C-contiguous ``arr`` from ``f`` exactly; DataFormatError when the stream ends early."""
    view = arr.reshape(-1).view(np.uint8)
    n, got = view.size, 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise DataFormatError(f"{source}: file ended while reading {what} ({got} of {n} bytes).")
        got += k


def is_gzip(path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_maybe_gzip(path):
    """``(file object, compressed)``: gzip files (by magic bytes) are opened decompressing."""
    if is_gzip(path):
        return gzip.open(path, "rb"), True
    return open(path, "rb"), False


#: exceptions the gzip / zlib layer raises for damaged streams
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError)


def file_size(path) -> int:
    return os.stat(path).st_size
