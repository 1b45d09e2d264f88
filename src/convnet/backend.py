"""The array module and the dtype policy.

Every array function starts with ``xp = get_array_module(x)``: NumPy for NumPy
arrays (the default), CuPy when it is handed CuPy arrays.  This is the only
module in convnet that imports ``cupy``; nothing else needs to know whether it
is installed.

Dtypes: float32 is the default everywhere; float64 is accepted everywhere (the
tests use it for the finite-difference and reference checks).  Integer, boolean,
complex and object arrays are refused with a :class:`~convnet.errors.DTypeError`.
"""
from __future__ import annotations

import numpy as np

from .errors import DTypeError, describe

DEFAULT_DTYPE = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

try:  # pragma: no cover - exercised only where CuPy is installed
    import cupy as _cupy
except Exception:  # ImportError, or a CUDA runtime that fails to load
    _cupy = None


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def gpu_array_module():
    """The ``cupy`` module, or None where CuPy is not installed (or its CUDA runtime failed to load).
    :func:`convnet.device.resolve_device` turns None into an error that says how to install it."""
    return _cupy


def to_numpy(x) -> np.ndarray:
    """Bring an array to the host as a NumPy array (a no-op for NumPy arrays)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(x)


def check_float_array(x, name: str):
    """Check ``x`` is a float32/float64 array; return it unchanged.

    Raises DTypeError for anything else, naming the argument and what it got.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None or not hasattr(x, "shape"):
        raise DTypeError(
            f"Argument `{name}` must be a float32 or float64 array; received {type(x).__name__} {describe(x)}."
        )
    if np.dtype(dtype) not in FLOAT_DTYPES:
        raise DTypeError(
            f"Argument `{name}` must have dtype float32 or float64; received {describe(x)}. "
            f"Convert it first, e.g. `{name}.astype(np.float32)`."
        )
    return x


def resolve_dtype(dtype) -> np.dtype:
    """Validate a dtype argument (None means the default float32)."""
    if dtype is None:
        return DEFAULT_DTYPE
    try:
        d = np.dtype(dtype)
    except TypeError as exc:
        raise DTypeError(f"Argument `dtype` must be float32 or float64; received {dtype!r}.") from exc
    if d not in FLOAT_DTYPES:
        raise DTypeError(f"Argument `dtype` must be float32 or float64; received {d}.")
    return d


def as_strided(x, shape, strides):
    """A read-only strided view of ``x`` (CuPy's ``as_strided`` has no ``writeable``)."""
    xp = get_array_module(x)
    if xp is np:
        return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)
