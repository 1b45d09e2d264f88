"""Ranks that would not compute the same training are refused before the first step.

Every rank describes what decides its numbers — the configuration fields that change the
math, the data (size, classes, image shape, a checksum), the network's parameter shapes, the
convnet version — as a small dict; one ``allgather`` brings all the dicts to every rank, and
the first rank and field that differ from rank 0's are named in a DistributedError (exit
status 10), raised on every rank at once (Horovod's stall inspector names the rank that did
not join; this names the rank and the field that differ).
"""
from __future__ import annotations

import hashlib
import zlib

import numpy as np

from ..errors import DistributedError

__all__ = ["check_same", "data_fingerprint", "first_difference"]

#: rows of the images hashed at each end of a data set (the labels are hashed whole)
_EDGE_ROWS = 256


def data_fingerprint(ds) -> dict:
    """What identifies a data set cheaply: sample count, classes, image shape, a checksum of
    all labels and of the first and last images."""
    n = len(ds)
    x = np.ascontiguousarray(ds.x[:_EDGE_ROWS]).tobytes() + np.ascontiguousarray(ds.x[max(n - _EDGE_ROWS, 0):]).tobytes()
    checksum = zlib.crc32(np.ascontiguousarray(ds.y).tobytes(), zlib.crc32(x))
    return {"samples": n, "classes": [str(c) for c in ds.classes], "image_shape": list(ds.image_shape),
            "checksum": f"{checksum:08x}"}


def shapes_digest(net) -> str:
    """SHA-256 (12 hex digits) of the names, shapes and dtypes of a net's parameters and state."""
    h = hashlib.sha256()
    for name, p, _ in net.named_parameters(trainable_only=False):
        h.update(f"{name}:{tuple(p.shape)}:{p.dtype};".encode())
    for name, v in net.named_state():
        h.update(f"{name}:{tuple(v.shape)}:{v.dtype};".encode())
    return h.hexdigest()[:12]


def first_difference(facts: list[dict]) -> tuple[int, str, object, object] | None:
    """``(rank, field, rank 0's value, that rank's value)`` of the first difference, or None.

    Fields are dotted paths into nested dicts (``"data.samples"``, ``"config.lr"``)."""
    reference = _flatten(facts[0])
    for rank, other in enumerate(facts[1:], start=1):
        mine = _flatten(other)
        for key in sorted(set(reference) | set(mine)):
            if reference.get(key, "<absent>") != mine.get(key, "<absent>"):
                return rank, key, reference.get(key, "<absent>"), mine.get(key, "<absent>")
    return None


def check_same(world, facts: dict, *, what: str = "the training") -> None:
    """Raise DistributedError on every rank when any rank's ``facts`` differ from rank 0's."""
    if not world.active:
        return
    gathered = world.allgather(facts, what="consistency check")
    found = first_difference(gathered)
    if found is None:
        return
    rank, key, ref, mine = found
    exc = DistributedError(f"Rank {rank} differs from rank 0 in {key}: rank 0 has {_short(ref)}, rank {rank} has "
                           f"{_short(mine)}; every rank must run {what} with the same options, data and convnet.")
    exc.collective = True
    raise exc


def _flatten(d, prefix="") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
