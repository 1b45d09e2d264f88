"""The benchmark process's environment: thread counts set before NumPy loads, and a report of what ran.

:func:`configure` must run before the first ``import numpy`` / ``import torch``:
it pins every library to the same number of threads and, for this process
only, unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (set on some of our
machines for old OpenBLAS builds; they slow a current NumPy).  What was unset
is recorded, and :func:`describe` reports where it ran — CPU model, ISA flags (AVX2, AVX-512,
VNNI, AMX...), cores — and which BLAS kernel actually ran.
"""
from __future__ import annotations

import os
import platform
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
UNSET_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: what configure() changed, for the report
CHANGES: dict = {}


def configure(threads: int = 2, *, keep_openblas_vars: bool = False) -> dict:
    """Pin thread counts and unset the old-OpenBLAS overrides; return what changed."""
    if "numpy" in sys.modules or "torch" in sys.modules:
        raise RuntimeError("benchmarks.env.configure() must run before numpy or torch is imported")
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    # what the `convnet` command applies (convnet.runtime.tune): idle OpenBLAS workers sleep instead of
    # spinning between GEMMs (NumPy's OpenBLAS only, PyTorch is not affected) and glibc keeps freed
    # activation-sized arrays (process-wide: every peer in the run shares it)
    ensure_importable()
    from convnet.runtime import tune

    tune()
    unset = {}
    if not keep_openblas_vars:
        for var in UNSET_VARS:
            if var in os.environ:
                unset[var] = os.environ.pop(var)
    CHANGES.update(threads=threads, unset=unset, openblas_thread_timeout=os.environ["OPENBLAS_THREAD_TIMEOUT"])
    return dict(CHANGES)


def src_path() -> str:
    """The repository's ``src`` folder (so the suite runs with or without ``pip install -e .``)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def ensure_importable() -> None:
    try:
        import convnet  # noqa: F401
    except ImportError:
        sys.path.insert(0, src_path())


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


#: the instruction-set flags that decide which kernels a library runs (/proc/cpuinfo names), in order
ISA_FLAGS = ("sse4_2", "avx", "fma", "f16c", "avx2", "avx_vnni", "avx512f", "avx512cd", "avx512bw", "avx512dq",
             "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def _cpuinfo_fields() -> dict:
    """The first processor's ``key: value`` lines of /proc/cpuinfo ({} where there is none)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor only
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def isa_flags(flags=None) -> list[str]:
    """Which of :data:`ISA_FLAGS` this CPU has (from /proc/cpuinfo; [] where it cannot be read)."""
    have = set((_cpuinfo_fields().get("flags", "") if flags is None else flags).split())
    return [f for f in ISA_FLAGS if f in have]


def isa_level(isa: list[str]) -> str:
    """A short name of the widest vector ISA in ``isa``: "AVX-512 + AMX", "AVX-512", "AVX2 + FMA", ..."""
    if "avx512f" in isa:
        return "AVX-512" + (" + AMX" if "amx_tile" in isa else "")
    if "avx2" in isa:
        return "AVX2 + FMA" if "fma" in isa else "AVX2"
    if "avx" in isa:
        return "AVX"
    return "SSE" if isa else "unknown"


def cpu_description() -> dict:
    """CPU model, vendor, family and model numbers, ISA flags and the cores this process may use."""
    fields = _cpuinfo_fields()
    isa = isa_flags(fields.get("flags", ""))
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cpu_vendor": fields.get("vendor_id", platform.machine()),
        "cpu_family": fields.get("cpu family"),
        "cpu_model_number": fields.get("model"),
        "isa": isa,
        "isa_level": isa_level(isa),
        "cpu_count": os.cpu_count(),
        "cores_usable": usable,
    }


def machine_line(info: dict) -> str:
    """One line that names the machine: model, family/model, ISA level and flags, cores."""
    fam = f"family {info.get('cpu_family')} model {info.get('cpu_model_number')}; " if info.get("cpu_family") else ""
    isa = ", ".join(info.get("isa") or []) or "flags unknown"
    return (f"{info.get('cpu')} ({fam}{info.get('isa_level', '?')}: {isa}); "
            f"{info.get('cores_usable', info.get('cpu_count'))} cores usable of {info.get('cpu_count')} CPUs")


def _malloc_status() -> dict:
    """What :func:`convnet.runtime.tune` did to glibc malloc (process-wide: every peer in the run shares it)."""
    try:
        from convnet import runtime
    except ImportError:
        return {"tuned": False, "reason": "convnet not importable"}
    return dict(runtime.STATUS)


def describe() -> dict:
    """The machine (CPU model, ISA flags, cores: :func:`cpu_description`), versions, BLAS kernels
    (threadpoolctl, and ``blas_kernel``: the line :func:`blas_kernel` makes of them) and thread
    counts of this process."""
    import numpy as np

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        **cpu_description(),
        "numpy": np.__version__,
        "threads": CHANGES.get("threads"),
        "env": {v: os.environ.get(v) for v in THREAD_VARS + UNSET_VARS + ("OPENBLAS_THREAD_TIMEOUT",)},
        "unset_for_this_run": CHANGES.get("unset", {}),
        "malloc": _malloc_status(),
    }
    try:
        import threadpoolctl

        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "prefix", "version", "architecture", "num_threads",
                                   "threading_layer", "filepath")}
            for p in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    info["blas_kernel"] = blas_kernel(info)
    for name in ("torch", "onnxruntime", "onnx", "mygrad", "numba", "scipy", "psutil"):
        try:
            mod = __import__(name)
            info[name] = getattr(mod, "__version__", "?")
        except Exception:  # noqa: BLE001 - a missing peer is reported, not fatal
            info[name] = None
    if info.get("torch"):
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
        try:
            info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        except Exception:  # noqa: BLE001
            pass
    return info


def blas_kernel(info: dict) -> str:
    pools = info.get("threadpools")
    if not isinstance(pools, list):
        return "unknown"
    return ", ".join(
        f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} ({p.get('prefix')}, {p.get('num_threads')} threads)"
        for p in pools
    )
