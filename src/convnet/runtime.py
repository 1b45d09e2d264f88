"""Process-wide settings that make convnet faster, applied only when asked: :func:`tune`.

``import convnet`` changes nothing in the process.  The ``convnet`` command and the
benchmarks call :func:`tune` first; a program that embeds convnet may call it too, as early
as it can (before NumPy is first imported, for the first setting to apply):

* **OpenBLAS's idle workers sleep soon after a GEMM** (``OPENBLAS_THREAD_TIMEOUT=20``, about
  2^20 cycles instead of 2^28): spinning workers take a core from convnet's compiled kernels,
  which run between GEMMs.  OpenBLAS reads the variable when NumPy loads it, so it is set only
  when NumPy is not loaded yet, and a value already in the environment wins.
* **glibc keeps freed activation-sized arrays in the heap** (``M_MMAP_THRESHOLD`` = 32 MiB,
  ``M_TRIM_THRESHOLD`` = 64 MiB, where glibc's own adaptive rule ends up): otherwise every
  array above 128 KiB is a fresh ``mmap`` that faults in page by page after each free.
  Nothing is done when ``CONVNET_MALLOC=0``, when any of glibc's ``MALLOC_*_`` variables or a
  ``glibc.malloc`` tunable in ``GLIBC_TUNABLES`` is set (the user's choice wins), or off glibc.

* **numba's loops use 512-bit vectors on a CPU with AVX-512** (``NUMBA_CPU_FEATURES`` = the CPU's
  own features plus ``-prefer-256-bit``): LLVM otherwise keeps to 256-bit registers there, and the
  direct convolution's blocks (:mod:`convnet.ops.kernels.direct_blocks`) are sized for 512.  Set
  only when numba is not loaded yet and ``NUMBA_CPU_FEATURES`` is unset; ``CONVNET_WIDE_VECTORS=0``
  leaves LLVM's choice alone.
* **CONV layers keep their weight transforms between calls** (``CONVNET_PREPACK=1``, unless set):
  Winograd's transformed filter is made once while the weights are unchanged, and at inference a
  BN after a CONV is folded into its weights (``Net.folds``).  The command never
  edits weights behind a layer's back; a program that does must call ``layer.weights_changed()``.

What each setting was measured to give is in docs/tuning.md.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 64 * 2**20
#: glibc's environment variables for the same settings: any of them set means "leave malloc alone"
GLIBC_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")

#: the OpenBLAS variable, and the value :func:`tune` gives it when it is unset and NumPy not loaded
OPENBLAS_TIMEOUT_VAR, OPENBLAS_TIMEOUT = "OPENBLAS_THREAD_TIMEOUT", "20"

#: the LLVM feature that, removed, lets the vectorisers use 512-bit registers
WIDE_VECTORS_FEATURE = "-prefer-256-bit"

#: what :func:`tune_malloc` set (``{"mmap_threshold": ..., "trim_threshold": ...}``), or why it did not
STATUS: dict = {"tuned": False, "reason": "not run"}


def tune() -> dict:
    """Apply the settings (once); return what was done: ``{"openblas_thread_timeout": value or
    None (NumPy already loaded), "wide_vectors": bool, "malloc": STATUS}`` (``CONVNET_PREPACK`` is
    set unless already set)."""
    os.environ.setdefault("CONVNET_PREPACK", "1")
    if "numpy" not in sys.modules:
        os.environ.setdefault(OPENBLAS_TIMEOUT_VAR, OPENBLAS_TIMEOUT)
        timeout = os.environ[OPENBLAS_TIMEOUT_VAR]
    else:
        timeout = None
    return {"openblas_thread_timeout": timeout, "wide_vectors": tune_vector_width(), "malloc": tune_malloc()}


def tune_vector_width() -> bool:
    """On an AVX-512 CPU, ask numba's LLVM for 512-bit vectors (before numba loads); True when
    ``NUMBA_CPU_FEATURES`` now says so."""
    if WIDE_VECTORS_FEATURE in os.environ.get("NUMBA_CPU_FEATURES", ""):
        return True
    if (os.environ.get("CONVNET_WIDE_VECTORS", "1") == "0" or "NUMBA_CPU_FEATURES" in os.environ
            or "numba" in sys.modules):
        return False
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    except Exception:  # no llvmlite (no numba), or it fails to load
        return False
    if "+avx512f" not in features.split(","):
        return False
    os.environ["NUMBA_CPU_FEATURES"] = f"{features},{WIDE_VECTORS_FEATURE}"
    return True


def tune_malloc() -> dict:
    """Apply the two malloc thresholds once; return :data:`STATUS`."""
    if STATUS.get("tuned"):
        return STATUS
    reason = None
    if os.environ.get("CONVNET_MALLOC", "1") == "0":
        reason = "CONVNET_MALLOC=0"
    elif any(v in os.environ for v in GLIBC_VARS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        reason = "glibc MALLOC_* variables or GLIBC_TUNABLES malloc settings set"
    elif not sys.platform.startswith("linux"):
        reason = f"not Linux ({sys.platform})"
    if reason is None:
        try:
            libc = ctypes.CDLL(None)
            libc.gnu_get_libc_version.restype = ctypes.c_char_p
            libc.gnu_get_libc_version()
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            reason = "not glibc"
        else:
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            ok = ok and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
            if ok:
                STATUS.clear()
                STATUS.update(tuned=True, mmap_threshold=MMAP_THRESHOLD_BYTES, trim_threshold=TRIM_THRESHOLD_BYTES)
                return STATUS
            reason = "mallopt refused"
    STATUS.clear()
    STATUS.update(tuned=False, reason=reason)
    return STATUS
