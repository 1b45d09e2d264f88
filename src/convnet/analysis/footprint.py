"""What each layer keeps for backward and how much scratch memory it needs.

This is the per-layer half of the memory model (:mod:`convnet.analysis.memory`
walks the graph).  Each layer class states its own :class:`Footprint` in its
``footprint(input_shapes, output_shape, *, batch, itemsize, train)`` method
(:mod:`convnet.layers`: what its cache holds — references to input or output,
owned arrays such as switches and masks — and its ops' temporaries); the
dataclass lives in :mod:`convnet.layers.accounting`.  A convolution's is what its
plan says (:func:`convnet.ops.fast.conv_plan`: the ``forward`` and ``backward``
workspaces of the algorithm it picks for the shape — padded copies, a block of
im2col columns under ``workspace_bytes``, Winograd's transformed tiles and filter) — and, as
``persistent_bytes``, the weight transforms a layer keeps between calls (a CONV's prepacked
Winograd ``U`` in inference and when frozen; only with ``CONVNET_PREPACK=1``), which the memory
model counts beside the parameters.

The numbers are estimates of NumPy's temporaries, good to the ±20% that the
tests ask of a whole training step; the cached part is exact.
"""
from __future__ import annotations

from ..layers.accounting import Footprint

__all__ = ["Footprint", "footprint"]


def footprint(layer, input_shapes, output_shape, *, batch: int, itemsize: int, train: bool) -> Footprint:
    """The :class:`Footprint` of ``layer`` for a batch of ``batch`` samples of the given per-sample
    shapes: ``layer.footprint(...)`` with the shapes as tuples (a layer class that states none
    keeps its input, the safe guess, and needs no scratch)."""
    return layer.footprint([tuple(s) for s in input_shapes], tuple(output_shape), batch=batch, itemsize=itemsize,
                           train=train)
