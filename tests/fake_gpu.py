"""A fake GPU for testing the device plumbing on a CPU: an array module standing in for CuPy whose
arrays are :class:`DeviceArray`, a NumPy subclass.  :func:`install` puts it where convnet looks for
CuPy (``convnet.backend._cupy``), so ``get_array_module``, ``to_numpy``, ``resolve_device("gpu")``
and the ops' non-NumPy paths (no numba kernels, as on CuPy) all take it for the GPU.

An array that leaves the fake device (``np.asarray``, ``np.zeros``, a numba kernel's output) comes
back a plain ``np.ndarray`` — which is what the tests look for: a silent host round trip."""
from __future__ import annotations

import types

import numpy as np


class DeviceArray(np.ndarray):
    """An array "on the fake GPU"."""


def _on(out):
    if isinstance(out, np.ndarray) and not isinstance(out, DeviceArray):
        return out.view(DeviceArray)
    if isinstance(out, tuple):
        return tuple(_on(o) for o in out)
    return out


class FakeCupy:
    """The parts of CuPy's interface that convnet uses, over NumPy, returning DeviceArrays."""

    __name__ = "fakecupy"
    ndarray = DeviceArray

    def __init__(self, devices: int = 1):
        self.transfers = {"to_host": 0, "to_device": 0}
        self.current = []
        self.cuda = types.SimpleNamespace(
            runtime=types.SimpleNamespace(getDeviceCount=lambda: devices),
            Device=lambda i: types.SimpleNamespace(use=lambda: self.current.append(i)),
        )
        self.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=self._as_strided))

    @staticmethod
    def _as_strided(x, shape=None, strides=None):
        return _on(np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, subok=True))

    def asarray(self, a, dtype=None, **kw):
        if not isinstance(a, DeviceArray):
            self.transfers["to_device"] += 1
        return _on(np.array(a, dtype=dtype, copy=True) if not isinstance(a, DeviceArray) else np.asarray(a, dtype=dtype).view(DeviceArray))

    def asnumpy(self, a):
        self.transfers["to_host"] += 1
        return np.array(a, copy=True).view(np.ndarray)

    def __getattr__(self, name):
        f = getattr(np, name)
        if not callable(f) or isinstance(f, type):
            return f

        def on_device(*args, **kwargs):
            return _on(f(*args, **kwargs))

        return on_device


def install(monkeypatch, devices: int = 1) -> FakeCupy:
    """Make convnet see a :class:`FakeCupy` as CuPy (undone by ``monkeypatch`` after the test)."""
    from convnet import backend

    fake = FakeCupy(devices)
    monkeypatch.setattr(backend, "_cupy", fake)
    return fake


def is_host(a) -> bool:
    return isinstance(a, np.ndarray) and not isinstance(a, DeviceArray)
