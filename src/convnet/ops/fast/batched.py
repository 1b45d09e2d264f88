"""A batch of small GEMMs — Winograd's α² products ``M[ξ] = V[ξ] @ U[ξ]`` — on the two threads.

``np.matmul`` runs a stacked product as one BLAS call per matrix, and OpenBLAS splits each call
over its own threads, which for Winograd's products (1-70 M multiply-adds each) costs more than it
saves: its workers wake for every call and sleep between the compiled transforms.  Here the batch
is cut in two halves instead, one per thread (:func:`convnet.ops.kernels.parallel.halves`; BLAS
releases the GIL), with BLAS on one thread meanwhile.  Each product is computed as before; only
which thread computes it changes.  Without threadpoolctl (a dependency of scikit-learn) the batch
runs as before.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..kernels import parallel

_blas = None  # the loaded BLAS libraries' threadpoolctl controllers, found once


def _blas_libraries() -> list:
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        except Exception:  # not installed, or a library it cannot control
            _blas = []
    return _blas


@contextlib.contextmanager
def _one_blas_thread(libraries):
    before = [lib.get_num_threads() for lib in libraries]
    for lib in libraries:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libraries, before):
            lib.set_num_threads(n)


def matmul(a, b, out):
    """``out[i] = a[i] @ b[i]`` for a NumPy batch (``out`` given, C-contiguous rows per matrix);
    returns ``out``."""
    batch = a.shape[0]
    libraries = _blas_libraries() if parallel.splits(batch) else []
    if not libraries:
        return np.matmul(a, b, out=out)

    def half(start, stop):
        np.matmul(a[start:stop], b[start:stop], out=out[start:stop])

    with _one_blas_thread(libraries):
        parallel.halves(half, batch)
    return out
