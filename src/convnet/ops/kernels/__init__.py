"""Compiled loops (numba) for the ops where NumPy's passes waste memory bandwidth.

A NumPy expression such as ``dy * a + x * b + c`` streams whole activations through
memory once per operator and allocates a temporary for each.  The kernels here read
their inputs once and write their output once, channel innermost (NHWC: contiguous,
vectorised by LLVM):

* :mod:`.pool`: max pooling with and without switches, and its backward;
* :mod:`.norm`: batch-norm channel statistics and the per-channel affine maps;
* :mod:`.relu`: ReLU forward and backward;
* :mod:`.direct`: direct convolution for layers with few output channels (the loops in
  :mod:`._generated.direct_conv_avx2` or ``_avx512``, written out by :mod:`.direct_gen`);
* :mod:`.col2im`: col2im as a gather; :mod:`.winograd`: Winograd's tile and filter transforms.

numba's thread pool is not used: its workers and OpenBLAS's (which spin for a while after
every GEMM) fought over the two cores and made a training step slower than with NumPy.
The direct convolution and the Winograd transforms split their work with one helper
thread (:mod:`.parallel`); the others run on the calling thread.  Each computes exactly what
its NumPy version in :mod:`convnet.ops` documents, and the NumPy versions stay as their test
oracles (``tests/ops/test_ops_kernels.py``).

numba is optional (``pip install convnet[fast]``).  :func:`enabled` is False when it is not
installed or when the environment sets ``CONVNET_NUMBA=0``; callers then use NumPy.
This package is the only place that imports numba.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from ...backend import get_array_module

try:  # pragma: no cover - depends on the installation
    import numba as _numba
except Exception:  # ImportError, or an llvmlite that fails to load
    _numba = None


def enabled() -> bool:
    """True when the compiled kernels are available and not switched off."""
    return _numba is not None and os.environ.get("CONVNET_NUMBA", "1") != "0"


def vector_isa() -> str:
    """``"avx512"`` on a CPU with AVX-512 (its foundation set), else ``"avx2"``: which register
    blocks the direct convolution's kernels use (:mod:`.direct_blocks`).  ``CONVNET_VECTOR_ISA``
    overrides the choice (both tables compute the same sums, but AVX-512's also has a K = 128
    kernel, so the override can change which algorithm a plan picks)."""
    chosen = os.environ.get("CONVNET_VECTOR_ISA")
    if chosen in ("avx2", "avx512"):
        return chosen
    return "avx512" if host_has_avx512() else "avx2"


def host_has_avx512() -> bool:
    """True when LLVM reports AVX-512 Foundation on this CPU (False without numba)."""
    global _AVX512
    if _AVX512 is None:
        try:
            import llvmlite.binding as llvm

            _AVX512 = "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")
        except Exception:  # pragma: no cover - no llvmlite, or it fails to load
            _AVX512 = False
    return _AVX512


_AVX512 = None


def usable(*arrays) -> bool:
    """True when the kernels are enabled and every array is a NumPy array on the host (not CuPy,
    nor anything :func:`~convnet.backend.get_array_module` takes for a device array)."""
    return enabled() and all(isinstance(a, np.ndarray) for a in arrays) and get_array_module(*arrays) is np


def compiled(fn=None, *, contract: bool = False):
    """``numba.njit`` (cached, GIL released) when numba is installed; else ``fn`` unchanged
    (never called then: callers check :func:`enabled` first).

    ``contract=True`` lets LLVM fuse ``a * b + c`` into one FMA instruction (one rounding
    instead of two; otherwise IEEE semantics are kept): it doubles the multiply-add rate.
    """
    if fn is None:
        return lambda f: compiled(f, contract=contract)
    if _numba is None:
        return fn
    return _numba.njit(cache=True, nogil=True, fastmath={"contract"} if contract else False)(fn)


@contextlib.contextmanager
def slp_vectorised():
    """Compile inside this block with LLVM's SLP vectoriser on and its loop vectoriser off.

    numba's defaults are the opposite.  The direct-convolution loops keep ``K`` separate
    accumulators that only the SLP vectoriser packs into AVX registers; the loop vectoriser
    would instead vectorise the channel reduction and spill (an order of magnitude slower).
    numba reads these two settings when it compiles, so the kernels are called inside this
    block (a no-op once they are compiled or loaded from numba's cache).
    """
    cfg = _numba.core.config
    old = cfg.LOOP_VECTORIZE, cfg.SLP_VECTORIZE
    cfg.LOOP_VECTORIZE, cfg.SLP_VECTORIZE = 0, 1
    try:
        yield
    finally:
        cfg.LOOP_VECTORIZE, cfg.SLP_VECTORIZE = old
