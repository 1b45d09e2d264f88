"""Devices by name: ``"cpu"`` (NumPy) and ``"gpu"`` (CuPy on a CUDA GPU; ``"cuda"`` is the same).

A device *is* an array module: :func:`resolve_device` turns a name into ``numpy`` or ``cupy``, and
everything else (``Net.to``, layers, ops, optimizers) works with the module.  Asking for the GPU
where CuPy or a GPU is missing is a :class:`~convnet.errors.ConfigError` (exit status 2) in one
sentence, never a fall back to the CPU: a run asked to be on the GPU is on it, or does not start.

Moving is explicit and whole: :func:`to_device` moves one array, ``Net.to`` a whole net.  Mixing
devices is refused where it can be seen cheaply (:func:`check_input`, :func:`check_net`), with the
layer and both devices named, instead of a deep, vague error from inside an op.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module, gpu_array_module, to_numpy
from .errors import ConfigError

__all__ = ["DEVICES", "check_input", "check_net", "device_name", "resolve_device", "select_gpu", "to_device"]

#: the device names the command line accepts (``cuda`` is accepted as another name of ``gpu``)
DEVICES = ("cpu", "gpu")
_ALIASES = {"cpu": "cpu", "numpy": "cpu", "gpu": "gpu", "cuda": "gpu", "cupy": "gpu"}
INSTALL_HINT = "pip install convnet[gpu]"


def resolve_device(device):
    """The array module of ``device``: a name (``"cpu"``, ``"gpu"``, ``"cuda"``) or a module, returned as is.

    Raises ConfigError for an unknown name, and for ``"gpu"`` when CuPy is missing or sees no GPU.
    """
    if not isinstance(device, str):
        return device
    name = _ALIASES.get(device.strip().lower())
    if name is None:
        raise ConfigError(f"Argument `device` must be one of {', '.join(DEVICES)} (or cuda); received {device!r}.")
    if name == "cpu":
        return np
    cp = gpu_array_module()
    if cp is None:
        raise ConfigError(f"--device gpu needs CuPy ({INSTALL_HINT}) and a CUDA GPU; received {device!r} "
                          "but CuPy is not installed (or its CUDA runtime failed to load).")
    try:
        count = int(cp.cuda.runtime.getDeviceCount())
    except Exception as exc:  # no driver, no device: CUDARuntimeError
        raise ConfigError(f"--device gpu needs CuPy ({INSTALL_HINT}) and a CUDA GPU; received {device!r} but "
                          f"CuPy sees no GPU ({type(exc).__name__}: {exc}).") from None
    if count < 1:
        raise ConfigError(f"--device gpu needs CuPy ({INSTALL_HINT}) and a CUDA GPU; received {device!r} "
                          "but CuPy sees no GPU.")
    return cp


def device_name(xp) -> str:
    """``"cpu"`` for NumPy, ``"gpu"`` for CuPy (any other module: its name) — for messages."""
    if xp is np:
        return "cpu"
    if xp is gpu_array_module() and xp is not None:
        return "gpu"
    return getattr(xp, "__name__", type(xp).__name__)


def _module_name(xp) -> str:
    return getattr(xp, "__name__", type(xp).__name__)


def on_device(a, xp) -> bool:
    """Whether array ``a`` lives on ``xp``'s device (an array module without ``ndarray``: assumed yes)."""
    kind = getattr(xp, "ndarray", None)
    if not isinstance(kind, type):
        return True
    if xp is np:  # a NumPy subclass (np.memmap...) is on the host; a CuPy array is not
        return isinstance(a, np.ndarray) and get_array_module(a) is np
    return isinstance(a, kind)


def where(a) -> str:
    """``"gpu (cupy)"`` / ``"cpu (numpy)"``: where an array is, for messages."""
    cp = gpu_array_module()
    if cp is not None and isinstance(a, cp.ndarray):
        return f"gpu ({_module_name(cp)})"
    if isinstance(a, np.ndarray):
        return "cpu (numpy)"
    return type(a).__module__.split(".")[0] + f" ({type(a).__name__})"


def to_device(x, xp):
    """``x`` as an array of module ``xp`` (one host↔device copy when it is elsewhere; none when it is there)."""
    if xp is np:
        return to_numpy(x)
    return xp.asarray(x)


def check_input(x, xp, *, what: str = "Net.forward") -> None:
    """Refuse an input ``x`` that is not on the device of ``xp`` (one ``isinstance``)."""
    if not on_device(x, xp):
        raise ConfigError(
            f"{what}: `x` is on {where(x)} but the net's parameters are on {device_name(xp)} "
            f"({_module_name(xp)}); move the input with convnet.device.to_device(x, net.xp), "
            f"or the net with net.to({'cpu' if get_array_module(x) is np else 'gpu'!r}).")


def check_net(net) -> None:
    """Refuse a net whose parameters, gradients or state are not all on ``net.xp``'s device,
    naming the first layer (and array) that is elsewhere and both devices."""
    xp = net.xp
    for node in net.nodes:
        layer = node.layer
        for kind in ("params", "grads", "state"):
            for key, a in getattr(layer, kind).items():
                if a is not None and not on_device(a, xp):
                    raise ConfigError(
                        f"Layer {node.name!r} ({type(layer).__name__}) holds {kind} {key!r} on {where(a)} but the "
                        f"net is on {device_name(xp)} ({_module_name(xp)}); move the whole net with "
                        f"net.to({device_name(xp)!r}) instead of assigning arrays of another device.")


#: environment variables that launchers set to a process's rank on its own node
LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_LOCAL_RANK", "SLURM_LOCALID")


def select_gpu(xp, rank: int, environ=None) -> int | None:
    """One GPU per rank: make GPU ``local rank mod GPU count`` current for this process and return
    its index (None on the CPU).  The local rank is read from the launcher's environment (MPICH's
    ``MPI_LOCALRANKID``, Open MPI's ``OMPI_COMM_WORLD_LOCAL_RANK``, ...), else the global rank."""
    if xp is np:
        return None
    import os

    env = os.environ if environ is None else environ
    local = next((int(env[v]) for v in LOCAL_RANK_VARIABLES if str(env.get(v, "")).isdigit()), int(rank))
    index = local % max(1, int(xp.cuda.runtime.getDeviceCount()))
    xp.cuda.Device(index).use()
    return index
