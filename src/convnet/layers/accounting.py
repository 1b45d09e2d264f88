"""What a layer says about its arithmetic and its memory: :class:`LayerCost` and :class:`Footprint`.

Each layer class computes its own (``layer.cost(input_shapes, output_shape)``,
``layer.footprint(input_shapes, output_shape, batch=, itemsize=, train=)``);
:mod:`convnet.analysis` sums them over a net.  This module imports nothing of convnet, so
layers and analysis both import it without either importing the other.

Counting conventions (each layer's ``cost`` docstring gives its own rule):

* all counts are **per sample** (the summary multiplies by the batch);
* a multiply-add (MAC) is one multiplication and one addition; FLOPs count each separately,
  hence ``2·macs`` forward; backward of a CONV/FC is two GEMMs the size of the forward one
  (``dx`` and ``dw``), hence ``4·macs``;
* ``window`` describes the layer for receptive-field arithmetic: a sliding :class:`Window`
  ``(kernel, stride, dilation)`` per axis, :data:`GLOBAL` for layers that see their whole
  input (FC, global pooling), or None for layers that do not change the spatial geometry.

A :class:`Footprint` is for a whole batch, in bytes: what the layer's cache holds for backward
and the scratch its ops need beyond input, output and ``dx``.  The numbers estimate NumPy's
temporaries, good to the ±20% that the tests ask of a whole training step; the cached part is
exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """A sliding window for receptive-field arithmetic (height first)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)


GLOBAL = "global"


@dataclass(frozen=True)
class LayerCost:
    """Per-sample cost of one layer (see the module docstring for the conventions)."""

    weights: int = 0
    biases: int = 0
    macs: int = 0
    flops_forward: int = 0
    flops_backward: int = 0
    window: Window | str | None = None

    @property
    def params(self) -> int:
        return self.weights + self.biases


def elementwise_cost(output_shape, forward: int, backward: int) -> LayerCost:
    """``forward`` and ``backward`` FLOPs per output value, no parameters, no window."""
    n = int(math.prod(output_shape))
    return LayerCost(flops_forward=forward * n, flops_backward=backward * n)


@dataclass(frozen=True)
class Footprint:
    """Memory behaviour of one layer for a whole batch (bytes)."""

    keeps_input: bool = False  # the cache references the input array(s)
    keeps_output: bool = False  # the cache references the output array
    cache_bytes: int = 0  # arrays the cache owns (switches, masks, LRN scale)
    forward_scratch: int = 0  # temporaries alive while forward runs, beyond input and output
    #: forward temporaries freed when the op returns even where ``scratch_kind`` pools the rest
    forward_temp: int = 0
    backward_scratch: int = 0  # temporaries alive while backward runs, beyond dy, dx and the cache
    #: backward temporaries freed when the op returns even where ``scratch_kind`` pools the rest
    backward_temp: int = 0
    #: the pooled scratch in use while ``backward_temp`` lives, where that is an earlier, smaller
    #: phase of backward (Winograd: dx with its rotated filter, then dw); None: all of it
    backward_temp_scratch: int | None = None
    output_is_view: bool = False  # the output shares the input's memory (FLATTEN, DROPOUT at inference)
    dx_is_dy: bool = False  # backward hands dy itself to every input (ADD), or a view of it (FLATTEN)
    #: the scratch comes from reused buffers (convnet.ops.scratch) of this family ("winograd",
    #: "im2col"), which stay held after the layer; "" = temporaries freed when the op returns
    scratch_kind: str = ""
    #: arrays the layer keeps between calls beside its parameters (a CONV's prepacked weight
    #: transforms: Winograd's U), for as long as the weights are unchanged
    persistent_bytes: int = 0


def padded_elements(shape, geom) -> int:
    """Elements of one sample's zero-padded input ``(H + pads) · (W + pads) · C`` for a
    :class:`~convnet.ops.geometry.Geometry2D` (0 when there is no padding: no copy is made)."""
    if not geom.has_padding:
        return 0
    return geom.height.padded_size * geom.width.padded_size * shape[2]
