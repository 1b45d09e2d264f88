"""convnet: a readable convolutional-network engine in NumPy.

    >>> import convnet
    >>> net = convnet.parse("INPUT[32x32x3] -> [CONV3-32 -> RELU]*2 -> POOL2 -> FC-10")
    >>> net.output_shape()
    (10,)

Importing convnet changes nothing in the process (no environment variable, no allocator
setting) and loads its modules on first use; :func:`convnet.runtime.tune` applies the
process-wide speed settings the ``convnet`` command uses.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> (module, attribute or None for the module itself), loaded on first access
_EXPORTS = {
    "errors": ("convnet.errors", None),
    "layers": ("convnet.layers", None),
    "ops": ("convnet.ops", None),
    "zoo": ("convnet.zoo", None),
    "runtime": ("convnet.runtime", None),
    "Net": ("convnet.net", "Net"),
    "Node": ("convnet.graph", "Node"),
    "parse": ("convnet.pattern", "parse"),
    "to_pattern": ("convnet.pattern", "to_pattern"),
    "summarize": ("convnet.analysis", "summarize"),
    "summary": ("convnet.analysis.summary", "summarize"),
    "explain": ("convnet.analysis.explain", "explain"),
    "MemoryModel": ("convnet.analysis", "MemoryModel"),
    "lint": ("convnet.analysis", "lint"),
    "to_fully_convolutional": ("convnet.analysis.surgery", "to_fully_convolutional"),
    "to_dense": ("convnet.analysis.surgery", "to_dense"),
    "dense_scores": ("convnet.analysis.surgery", "dense_scores"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    """Load an exported name on first use (PEP 562), so ``import convnet`` stays cheap and inert."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'convnet' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
