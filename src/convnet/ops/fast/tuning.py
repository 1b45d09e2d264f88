"""The tuning cache: which convolution algorithm won on this machine, per layer shape.

:func:`convnet.ops.fast.conv_plan` asks :func:`lookup` before the cost model
(:func:`convnet.ops.fast.choose_algorithm`); :mod:`convnet.ops.fast.tuner` times the algorithms
and :func:`store`\\ s the winners (``convnet tune MODEL``).  This module only reads and writes the
file, so the plan can import it without the op.

* **File**: ``$CONVNET_CACHE_DIR/tuning.json`` (default ``~/.cache/convnet/tuning.json``), JSON::

      {"format": "convnet-tuning/1",
       "machines": {MACHINE: {SHAPE: {"algorithm": "winograd4", "times_ms": {...}, "cost_model": "im2col"}}}}

  written atomically (a temporary file beside it, then ``os.replace``).  A corrupt or
  foreign-format file is ignored with one warning a process and replaced on the next save.
* **MACHINE** (:func:`machine_key`): the CPU's model name and ISA flags (``/proc/cpuinfo``), NumPy's
  and numba's versions, the kernels' threads (``CONVNET_THREADS``) and the BLAS threads
  (``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, else the CPU count).
  Entries of another machine are kept in the file but never used.
* **SHAPE** (:func:`shape_key`): dtype, x and w shapes, stride, the pads, dilation, groups and
  whether the compiled kernels run (which decides what applies).
* **Policy** (``CONVNET_TUNE``, read each time a plan is made): ``0`` — the cost model alone, the
  file is not read; unset or ``1`` (the default) — the file is read when present and a shape it
  holds runs with its winner, nothing is timed unless asked for (``convnet tune``,
  :func:`convnet.ops.fast.tuner.tune_shapes`), so library runs and tests stay deterministic;
  ``auto`` — as ``1``, and a shape the file lacks is timed the first time it is planned (run,
  explained or sized) and its winner saved.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from ..kernels import parallel

FORMAT = "convnet-tuning/1"
FILE_NAME = "tuning.json"
#: the ISA flags of /proc/cpuinfo that decide which kernels run fast
_ISA_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx", "bmi", "neon", "asimd", "sve")

_warned = False
_loaded: dict = {}  # path -> ((mtime_ns, size), data)
#: ``CONVNET_TUNE=auto``: ``tune(x_shape, w_shape, dtype, kwargs) -> algorithm``, set by
#: :mod:`convnet.ops.fast.tuner` (which runs the op, so this module cannot import it)
_first_use = None


def enabled() -> bool:
    """False when ``CONVNET_TUNE=0``: the cost model alone decides."""
    return os.environ.get("CONVNET_TUNE", "1").strip() != "0"


def tune_on_first_use() -> bool:
    """``CONVNET_TUNE=auto``: shapes the cache lacks are timed when first planned."""
    return os.environ.get("CONVNET_TUNE", "").strip().lower() == "auto"


def register_first_use(tune) -> None:
    """Set the function that times an unseen shape under ``CONVNET_TUNE=auto``."""
    global _first_use
    _first_use = tune


def cache_path() -> Path:
    """``$CONVNET_CACHE_DIR/tuning.json``, default ``~/.cache/convnet/tuning.json``."""
    folder = os.environ.get("CONVNET_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "convnet")
    return Path(folder) / FILE_NAME


@lru_cache(maxsize=1)
def _cpu() -> tuple[str, str]:
    """``(model name, ISA flags)`` from /proc/cpuinfo (else the platform's processor string)."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                name = name.strip()
                if name in ("model name", "Processor") and not model:
                    model = value.strip()
                elif name in ("flags", "Features") and not flags:
                    flags = " ".join(sorted(v for v in value.split() if v.startswith(_ISA_PREFIXES)))
                if model and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def blas_threads() -> int:
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return os.cpu_count() or 1


def machine_key() -> str:
    """What a timing holds for: CPU model, ISA flags (hashed), NumPy and numba versions, threads."""
    model, flags = _cpu()
    isa = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return (f"{model} | isa {isa} | numpy {np.__version__} | numba {_version('numba')} | "
            f"threads {parallel.threads()} | blas {blas_threads()}")


def machine_description() -> str:
    """The machine key with the ISA flags spelled out, for a report."""
    return machine_key() + " | " + _cpu()[1]


def shape_key(x_shape, w_shape, dtype, geom, groups: int, compiled: bool) -> str:
    """One layer shape: dtype, shapes, stride, pads, dilation, groups, compiled kernels on or off."""
    def dims(t):
        return "x".join(str(int(v)) for v in t)

    pads = ",".join(f"{a}-{b}" for a, b in geom.pads)
    return (f"{np.dtype(dtype).name} x={dims(x_shape)} w={dims(w_shape)} s={dims(geom.stride)} p={pads} "
            f"d={dims(geom.dilation)} g={int(groups)} compiled={int(bool(compiled))}")


def _warn_once(path: Path, why: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"Ignoring the tuning cache {path} ({why}); it will be rewritten on the next save.",
                      RuntimeWarning, stacklevel=3)


def load(path: Path | None = None) -> dict:
    """The file's ``machines`` table (``{}`` when absent, corrupt or foreign), kept until it changes."""
    path = cache_path() if path is None else Path(path)
    try:
        st = path.stat()
    except OSError:
        return {}
    stamp = (st.st_mtime_ns, st.st_size)
    kept = _loaded.get(str(path))
    if kept is not None and kept[0] == stamp:
        return kept[1]
    machines: dict = {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("machines"), dict):
            _warn_once(path, f"not a {FORMAT} file")
        else:
            machines = data["machines"]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _warn_once(path, f"unreadable: {type(exc).__name__}")
    _loaded[str(path)] = (stamp, machines)
    return machines


def lookup(x_shape, w_shape, dtype, geom, groups: int, compiled: bool,
           tune_kwargs: dict | None = None) -> str | None:
    """The tuned algorithm of this shape on this machine, or None (tuning off, or never timed).
    Under ``CONVNET_TUNE=auto`` a shape never timed is timed now (``tune_kwargs``: the conv
    arguments, :func:`convnet.ops.fast.conv_plan`'s stride, padding, dilation, groups, fit,
    workspace_bytes)."""
    if not enabled():
        return None
    key = shape_key(x_shape, w_shape, dtype, geom, groups, compiled)
    entries = load().get(machine_key())
    entry = entries.get(key) if isinstance(entries, dict) else None
    algorithm = entry.get("algorithm") if isinstance(entry, dict) else None
    if isinstance(algorithm, str):
        return algorithm
    mine = (machine_key(), key)
    if mine in _session:
        return _session[mine]
    if tune_kwargs is not None and _first_use is not None and tune_on_first_use():
        _session[mine] = _first_use(tuple(x_shape), tuple(w_shape), dtype, dict(tune_kwargs))
        return _session[mine]
    return None


#: (machine key, shape key) -> algorithm: shapes timed under ``CONVNET_TUNE=auto`` in this process
#: (used even where the file could not be written)
_session: dict = {}


def store(results: dict, path: Path | None = None) -> Path:
    """Merge ``{shape key: entry}`` into this machine's table and write the file atomically."""
    path = cache_path() if path is None else Path(path)
    machines = {k: v for k, v in load(path).items()}
    mine = dict(machines.get(machine_key()) or {})
    mine.update(results)
    machines[machine_key()] = mine
    text = json.dumps({"format": FORMAT, "machines": machines}, indent=1, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _loaded.pop(str(path), None)
    return path
