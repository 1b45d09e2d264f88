"""Checkpoints: one safetensors file holding the tensors and, in its metadata, a JSON document.

``save_checkpoint(path, tensors, meta)`` writes::

    tensors   weights ("conv1_1.w"), optimizer slots ("optim/m/conv1_1.w") ... — any flat
              dict of numpy arrays, by the caller's naming
    metadata  {"format": "convnet-checkpoint", "version": "1", "meta": json.dumps(meta)}

``meta`` is any JSON-serialisable dict: architecture (pattern or zoo name with
args), step, epoch, RNG states (``Generator.bit_generator.state`` is JSON), data
order and cursor, ``config_hash(config)``.  Weights and metadata are ONE file,
so a crash can never pair new weights with old metadata.

Writes are atomic (the PostgreSQL durable-rename recipe): the bytes go to a
hidden temporary file in the same folder (``.<name>.<random>.tmp``), which is
flushed and fsynced, then ``os.replace``-d onto the final name, then the folder
is fsynced.  A kill at any moment leaves either the old file or the new one
under the final name — never a partial one; a stale ``.tmp`` file may remain
(``remove_stale_temporaries`` deletes them).

``load_checkpoint`` validates every safetensors rule (see ``safetensors_io``)
and raises CheckpointError (caused by the DataFormatError naming the rule) for a
corrupt file.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

from ..backend import to_numpy
from ..errors import CheckpointError, ConfigError, DataFormatError
from .safetensors_io import read_safetensors, write_safetensors

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "config_hash",
    "check_config",
    "checkpoint_path",
    "latest_checkpoint",
    "remove_stale_temporaries",
    "atomic_write",
    "require_finite",
    "resolve_checkpoint",
]

CHECKPOINT_FORMAT = "convnet-checkpoint"
_VERSION = "1"
_TMP_SUFFIX = ".tmp"


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: final files get the permissions ``open()`` would give them (mkstemp makes 0600)
_FILE_MODE = 0o666 & ~_current_umask()


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (Path,)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(obj, *, what: str) -> str:
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Argument `{what}` must be JSON-serialisable (no NaN/inf, no arrays); {exc}.") from None


def config_hash(config: Mapping) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` (sorted keys; tuples hash as lists)."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"Argument `config` must be a dict; received {type(config).__name__}.")
    return hashlib.sha256(_dumps(dict(config), what="config").encode("utf-8")).hexdigest()


def check_config(meta: Mapping, config: Mapping, *, path=None) -> None:
    """Refuse (CheckpointError) to resume when ``config`` differs from the configuration the checkpoint was
    written with.

    ``config`` holds only the fields that change the computed numbers.  When ``meta["config"]`` is
    stored, exactly those fields are compared (so fields added or dropped from the identity since the
    checkpoint was written do not count) and the message names the differing ones; otherwise the
    SHA-256 of ``config`` is compared with ``meta["config_hash"]``.
    """
    where = f"Checkpoint {path}" if path is not None else "The checkpoint"
    old = meta.get("config")
    new = json.loads(_dumps(dict(config), what="config"))
    if isinstance(old, Mapping):
        # a field added since the checkpoint was written counts as unchanged while it is None (its off value)
        keys = sorted(k for k in new if old.get(k, "<absent>" if new[k] is not None else None) != new[k])
        if not keys:
            return
        shown = "; ".join(f"{k}: {old.get(k, '<absent>')!r} -> {new[k]!r}" for k in keys[:5])
        raise CheckpointError(f"{where} was written with another configuration; refusing to resume with a changed "
                              f"configuration. Changed: {shown}.")
    stored = meta.get("config_hash")
    if stored is None:
        raise CheckpointError(f"{where} has no 'config_hash' in its metadata; cannot check the configuration.")
    now = config_hash(config)
    if stored != now:
        raise CheckpointError(
            f"{where} was written with configuration hash {stored[:12]} but the current configuration hashes to "
            f"{now[:12]}; refusing to resume with a changed configuration."
        )


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def atomic_write(path, write) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, rename it onto ``path``, fsync the folder."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CheckpointError(f"Cannot write {path}: folder {directory} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return path


def save_checkpoint(path, tensors: Mapping[str, np.ndarray], meta: Mapping | None = None) -> Path:
    """Atomically write ``tensors`` and the JSON-serialisable ``meta`` to the safetensors file ``path``."""
    if not isinstance(tensors, Mapping):
        raise ConfigError(f"Argument `tensors` must be a dict of arrays; received {type(tensors).__name__}.")
    meta = {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise ConfigError(f"Argument `meta` must be a dict; received {type(meta).__name__}.")
    metadata = {"format": CHECKPOINT_FORMAT, "version": _VERSION, "meta": _dumps(dict(meta), what="meta")}
    arrays = {name: to_numpy(t) for name, t in tensors.items()}
    return atomic_write(path, lambda f: write_safetensors(f, arrays, metadata))


#: the checkpoints a training run writes into its folder (see train/trainer.py)
LAST, BEST = "last.safetensors", "best.safetensors"


def resolve_checkpoint(path) -> Path:
    """A checkpoint file from ``path``: the file itself, or in a run folder its best (else last) checkpoint."""
    p = Path(path)
    if p.is_dir():
        for name in (BEST, LAST):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"The folder {p} holds no checkpoint; expected {p / BEST} or {p / LAST} "
                              f"(a run folder written by `convnet train`).")
    if not p.exists():
        raise CheckpointError(f"Checkpoint {p} does not exist.")
    return p


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by ``save_checkpoint``; return ``(tensors, meta)``.

    Raises CheckpointError when the file is missing, corrupt (any safetensors
    rule) or not a convnet checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"Checkpoint {path} is a folder; expected a .safetensors file written by `convnet train`.")
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    kind = _foreign_kind(path)
    if kind is not None:
        raise CheckpointError(f"{path} is {kind}, not a checkpoint; expected a .safetensors file written by "
                              f"`convnet train`.")
    try:
        tensors, metadata = read_safetensors(path)
    except DataFormatError as exc:
        raise CheckpointError(f"Checkpoint {path} is not a safetensors file or is corrupt: {exc}") from exc
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"Checkpoint {path} is a safetensors file but not a convnet checkpoint "
            f"(metadata 'format' is {metadata.get('format')!r}, expected {CHECKPOINT_FORMAT!r})."
        )
    if metadata.get("version") != _VERSION:
        raise CheckpointError(f"Checkpoint {path} has version {metadata.get('version')!r}; this convnet reads {_VERSION!r}.")
    try:
        meta = json.loads(metadata.get("meta", "{}"))
    except ValueError as exc:
        raise CheckpointError(f"Checkpoint {path} has metadata that is not valid JSON: {exc}.") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"Checkpoint {path} has metadata that is not a JSON object.")
    return tensors, meta


def require_finite(tensors: Mapping, *, path=None) -> None:
    """Refuse (CheckpointError) weights that hold NaN or infinite values, naming the tensors."""
    bad = [name for name, t in tensors.items() if np.asarray(t).dtype.kind in "fc" and not np.all(np.isfinite(t))]
    if bad:
        listed = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        where = f"Checkpoint {path}" if path is not None else "The weights"
        raise CheckpointError(f"{where} holds NaN or infinite values in {listed}; it cannot be used "
                              f"(take an earlier checkpoint).")


#: the first bytes of files people pass by mistake where a checkpoint is expected
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"BM", "a BMP image"), (b"PK\x03\x04", "a zip archive (an .npz or a PyTorch .pt file?)"),
          (b"\x80", "a Python pickle (a PyTorch .pt/.pth file?)"), (b"\x93NUMPY", "a NumPy .npy file"))


def _foreign_kind(path: Path) -> str | None:
    """What the file is when it cannot be safetensors and its first bytes show a known other format, else None."""
    with open(path, "rb") as f:
        head = f.read(9)
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if 2 <= n <= path.stat().st_size - 8 and head[8:9] == b"{":
        return None  # a plausible safetensors start: the reader checks the rest, rule by rule
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


_NAME = re.compile(r"^(?P<prefix>.+)-(?P<step>\d+)\.safetensors$")


def checkpoint_path(directory, step: int, *, prefix: str = "ckpt") -> Path:
    """``directory/<prefix>-<step, 8 digits>.safetensors``."""
    return Path(directory) / f"{prefix}-{int(step):08d}.safetensors"


def latest_checkpoint(directory, *, prefix: str = "ckpt") -> Path | None:
    """The final-named checkpoint with the highest step in ``directory`` (temporaries ignored), or None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    best, best_step = None, -1
    for entry in directory.iterdir():
        m = _NAME.match(entry.name)
        if m and m.group("prefix") == prefix and entry.is_file() and int(m.group("step")) > best_step:
            best, best_step = entry, int(m.group("step"))
    return best


def remove_stale_temporaries(directory) -> list[Path]:
    """Delete temporary files left in ``directory`` by interrupted saves; return their paths."""
    removed = []
    for entry in Path(directory).iterdir():
        if entry.name.startswith(".") and entry.name.endswith(_TMP_SUFFIX) and entry.is_file():
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:  # pragma: no cover - raced with another cleaner
                pass
    return removed
