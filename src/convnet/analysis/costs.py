"""What one layer costs, from its hyperparameters and input shape alone.

Nothing here allocates a parameter: the numbers come from shapes, so the
summary of VGG16 at 224×224×3 needs no 550 MB of weights.  All counts are
**per sample** (the summary multiplies by the batch).

Each layer class states its own rule in its ``cost(input_shapes, output_shape)``
method (its docstring gives the formula: CONV ``Ho·Wo·K·kh·kw·C/g`` MACs, FLOPs
``2·macs`` forward and ``4·macs`` backward...), returning a :class:`LayerCost`;
the conventions (MACs and FLOPs, the receptive-field ``window``) are in
:mod:`convnet.layers.accounting`, where :class:`LayerCost` and :class:`Window` live.
A layer class that states nothing counts the parameters it holds if built, and no
arithmetic.
"""
from __future__ import annotations

from ..layers.accounting import GLOBAL, LayerCost, Window

__all__ = ["GLOBAL", "LayerCost", "Window", "layer_cost"]


def layer_cost(layer, input_shapes, output_shape) -> LayerCost:
    """The :class:`LayerCost` of ``layer`` for per-sample ``input_shapes`` (a list) and
    ``output_shape``: ``layer.cost(...)`` with the shapes as tuples."""
    return layer.cost([tuple(s) for s in input_shapes], tuple(output_shape))
