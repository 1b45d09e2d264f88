"""The benchmark process's environment: thread counts set before NumPy loads, and a report of what ran.

:func:`configure` must run before the first ``import numpy`` / ``import torch``:
it pins every library to the same number of threads and, for this process
only, unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (set on some of our
machines for old OpenBLAS builds; they slow a current NumPy).  What was unset
is recorded, and :func:`describe` reports which BLAS kernel actually ran.
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


def _malloc_status() -> dict:
    """What :func:`convnet.runtime.tune` did to glibc malloc (process-wide: every peer in the run shares it)."""
    try:
        from convnet import runtime
    except ImportError:
        return {"tuned": False, "reason": "convnet not importable"}
    return dict(runtime.STATUS)


def describe() -> dict:
    """Versions, BLAS kernels (threadpoolctl) and thread counts of this process."""
    import numpy as np

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
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
