"""Scratch buffers reused from one op call to the next: the temporaries an op never returns.

An op's temporaries (Winograd's transformed tiles ``V`` and products ``M``, im2col's column
block, the column gradients) are the same size at every call of a layer, and a fresh NumPy
array of a few MiB costs a page fault per 4 KiB the first time it is written — on small
layers more than their arithmetic (``docs/tuning.md``).  So each thread keeps one buffer per *slot*
(a name such as ``"winograd.v"``) and hands out views of it.

Rules for callers:

* a view is valid until the same thread asks for the same slot again: one slot, one
  temporary of one op call, never returned to the caller and never stored in a cache;
* NumPy arrays only (CuPy has its own memory pool: ``xp=cupy`` gets a plain new array);
* the contents are uninitialised, like ``np.empty``.

What is kept is bounded: at most :data:`KEEP_BYTES` over all slots of a thread (a larger
request is served by a fresh array that is not kept, and growing a slot past the bound
drops the others first).  :func:`release` frees this thread's buffers; :func:`kept_bytes`
says how much is held.  ``CONVNET_SCRATCH=0`` turns reuse off (every request a new array).
"""
from __future__ import annotations

import os
import threading

import numpy as np

#: bytes of scratch a thread keeps between calls (over all slots); the default workspace cap
KEEP_BYTES = 64 * 2**20

_local = threading.local()


def _pool() -> dict:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def enabled() -> bool:
    """Reuse is on unless ``CONVNET_SCRATCH=0``."""
    return os.environ.get("CONVNET_SCRATCH", "1") != "0"


def empty(slot: str, shape, dtype, xp=np) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape``/``dtype`` backed by this thread's
    buffer ``slot`` (grown when too small), or a new array when reuse is off, the request
    alone is over :data:`KEEP_BYTES`, or the array module ``xp`` is not NumPy (CuPy)."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if xp is not np or not enabled() or nbytes > KEEP_BYTES:
        return xp.empty(shape, dtype=dtype)
    pool = _pool()
    buf = pool.get(slot)
    if buf is None or buf.nbytes < nbytes:
        pool.pop(slot, None)
        others = sum(b.nbytes for b in pool.values())
        if others + nbytes > KEEP_BYTES:
            pool.clear()  # the others go first: the newest shape is the likeliest to come again
        buf = pool[slot] = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def kept_bytes() -> int:
    """Bytes this thread's slots hold now."""
    return sum(b.nbytes for b in _pool().values())


def release() -> None:
    """Free this thread's scratch buffers (they are made again on the next request)."""
    _pool().clear()
