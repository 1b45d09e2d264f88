"""The safetensors file format, written and read (and validated) by hand.

Layout (all little-endian)::

    8 bytes    N = header length, unsigned 64-bit
    N bytes    header: a UTF-8 JSON object, padded with spaces
                 {"<name>": {"dtype": "F32", "shape": [3, 3, 64, 128], "data_offsets": [begin, end]},
                  ...,
                  "__metadata__": {"<key>": "<string value>", ...}}          (optional)
    rest       the byte buffer; tensor bytes are buffer[begin:end], C order

The reader enforces the format's rules, each with its own message (DataFormatError):

1. header length: at least 2 (``{}``), at most ``MAX_HEADER_BYTES``, and
   inside the file;
2. the header is a UTF-8 JSON object with no duplicate keys;
3. each entry has exactly ``dtype`` (a known code), ``shape`` (non-negative
   integers) and ``data_offsets`` (``0 <= begin <= end``);
   ``__metadata__`` maps strings to strings;
4. byte size: ``end - begin == prod(shape) * itemsize`` exactly;
5. the ranges, sorted, are disjoint and cover the buffer from 0 with no gap;
6. the buffer ends where the last range ends: no missing bytes (truncation)
   and no trailing bytes.

Files written here load with ``safetensors.numpy.load`` and vice versa.
Every size is checked against the file size before anything is allocated.
"""
from __future__ import annotations

import json
import math
import os
import struct
from typing import BinaryIO, Mapping

import numpy as np

from ..errors import ConfigError, DataFormatError

__all__ = ["DTYPES", "MAX_HEADER_BYTES", "write_safetensors", "read_safetensors", "read_safetensors_header"]

#: safetensors dtype code -> numpy dtype (little-endian); BF16 and F8 have no numpy dtype.
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_UNSUPPORTED = {"BF16", "F8_E4M3", "F8_E5M2", "C64"}
_CODES = {(d.kind, d.itemsize): code for code, d in DTYPES.items()}

#: the largest header accepted (the reference implementation's limit)
MAX_HEADER_BYTES = 100_000_000


def _code_for(name: str, arr: np.ndarray) -> str:
    code = _CODES.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ConfigError(
            f"Tensor {name!r} has dtype {arr.dtype}, which safetensors cannot store; "
            f"use one of {', '.join(str(d) for d in DTYPES.values())}."
        )
    return code


def encode_header(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None) -> tuple[bytes, list]:
    """The 8-byte length + padded JSON header, and the (name, array) list in buffer order."""
    header: dict[str, object] = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ConfigError(f"safetensors metadata must map strings to strings; received {k!r}: {v!r:.60}.")
        header["__metadata__"] = dict(metadata)
    order, offset = [], 0
    for name in sorted(tensors):
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ConfigError(f"Tensor names must be non-empty strings other than '__metadata__'; received {name!r}.")
        arr = np.asarray(tensors[name])
        code = _code_for(name, arr)
        arr = np.asarray(arr, dtype=DTYPES[code], order="C")  # little-endian, C order (keeps 0-d)
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        order.append((name, arr))
        offset += arr.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)  # align the buffer to 8 bytes, as the reference writer does
    return struct.pack("<Q", len(text)) + text, order


def write_safetensors(f: BinaryIO, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> int:
    """Write ``tensors`` (and string ``metadata``) to the binary file object ``f``; return the byte count."""
    head, order = encode_header(tensors, metadata)
    f.write(head)
    total = len(head)
    for _, arr in order:
        if arr.nbytes:
            f.write(arr.reshape(-1).view(np.uint8))
        total += arr.nbytes
    return total


def _fail(source, problem):
    raise DataFormatError(f"safetensors file {source}: {problem}.")


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


class _Duplicate(Exception):
    pass


def read_safetensors_header(f: BinaryIO, *, file_size: int, source: str) -> tuple[dict, dict[str, str], int]:
    """Read and validate the header; return ``(entries, metadata, buffer_start)``.

    ``entries`` maps name -> (numpy dtype, shape tuple, begin, end); every rule
    of the module docstring is checked here, before any tensor is read.
    """
    if file_size < 8:
        _fail(source, f"the file is {file_size} bytes, shorter than the 8-byte header length")
    raw = f.read(8)
    if len(raw) != 8:
        _fail(source, "the 8-byte header length could not be read")
    (n,) = struct.unpack("<Q", raw)
    if n < 2 or n > MAX_HEADER_BYTES:
        _fail(source, f"header length {n} is outside the accepted range [2, {MAX_HEADER_BYTES}]")
    if 8 + n > file_size:
        _fail(source, f"header length {n} runs past the end of the {file_size}-byte file")
    text = f.read(n)
    if len(text) != n:
        _fail(source, f"the header is truncated ({len(text)} of {n} bytes)")
    if not text.startswith(b"{"):
        _fail(source, "the header does not start with '{'")
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _Duplicate as dup:
        _fail(source, f"the header has the key {dup.args[0]!r} twice")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        _fail(source, f"the header is not valid UTF-8 JSON ({type(exc).__name__}: {str(exc)[:80]})")
    if not isinstance(header, dict):
        _fail(source, "the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        _fail(source, "'__metadata__' must map strings to strings")
    buffer_size = file_size - 8 - n
    entries: dict[str, tuple] = {}
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            _fail(source, f"tensor {name!r} must have exactly the fields dtype, shape, data_offsets; received {info!r:.100}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code in _UNSUPPORTED:
            _fail(source, f"tensor {name!r} has dtype {code}, which numpy cannot represent")
        if code not in DTYPES:
            _fail(source, f"tensor {name!r} has unknown dtype {code!r}")
        if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
            _fail(source, f"tensor {name!r} has shape {shape!r:.100}; expected a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            _fail(source, f"tensor {name!r} has data_offsets {offsets!r:.100}; expected [begin, end] with 0 <= begin <= end")
        dtype = DTYPES[code]
        need = math.prod(shape) * dtype.itemsize
        begin, end = offsets
        if end - begin != need:
            _fail(source, f"tensor {name!r} ({code}, shape {tuple(shape)}) needs {need} bytes but its data_offsets "
                          f"[{begin}, {end}] span {end - begin}")
        entries[name] = (dtype, tuple(shape), begin, end)
    expected = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin != expected:
            what = "overlaps the previous tensor" if begin < expected else f"leaves a gap of {begin - expected} bytes"
            _fail(source, f"tensor {name!r} starts at byte {begin} of the buffer, which {what} (expected {expected})")
        expected = end
    if expected > buffer_size:
        _fail(source, f"the tensors need a {expected}-byte buffer but the file has {buffer_size} bytes after the "
                      f"header (truncated)")
    if expected < buffer_size:
        _fail(source, f"the file has {buffer_size - expected} trailing bytes after the last tensor")
    return entries, metadata, 8 + n


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file; return ``(tensors, metadata)`` with native-endian, writable arrays.

    Raises DataFormatError (naming the file and the rule) for any malformed file.
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise DataFormatError(f"safetensors file {path} cannot be opened: {exc.strerror or exc}.") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        entries, metadata, start = read_safetensors_header(f, file_size=size, source=path)
        tensors = {}
        for name, (dtype, shape, begin, end) in sorted(entries.items(), key=lambda kv: kv[1][2]):
            arr = np.empty(shape, dtype=dtype)
            if arr.nbytes:
                f.seek(start + begin)
                got = f.readinto(arr.reshape(-1).view(np.uint8))
                if got != end - begin:
                    _fail(path, f"tensor {name!r} is truncated ({got} of {end - begin} bytes)")
            if not arr.dtype.isnative:  # pragma: no cover - big-endian hosts only
                arr = arr.astype(arr.dtype.newbyteorder("="))
            tensors[name] = arr
    return tensors, metadata
