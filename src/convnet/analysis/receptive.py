"""Receptive field and effective stride ("jump") of every node of a net.

For a stack of sliding windows, along one axis, with ``r`` the receptive field
(in input pixels) and ``j`` the jump (input pixels between neighbouring
outputs), a layer with kernel ``k``, dilation ``d`` and stride ``s`` gives::

    k' = d·(k - 1) + 1          (effective kernel)
    r_out = r_in + (k' - 1)·j_in
    j_out = j_in · s

starting from ``r = 1, j = 1`` at the input.  Three stacked 3×3 stride-1 CONVs
therefore see ``1 + 2 + 2 + 2 = 7`` pixels: the notes' 7×7.  Layers that see
their whole input (FC, global pooling) act as a window the size of that input.
Where branches meet (Add, Concat) the largest field and jump are kept.

Example::

    >>> stack_receptive_field([3, 3, 3], [1, 1, 1])
    (7, 1)
    >>> stack_receptive_field([11, 3, 5, 3], [4, 2, 1, 2])   # AlexNet conv1, pool1, conv2, pool2
    (67, 16)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..graph import INPUT
from .costs import GLOBAL, Window, layer_cost


@dataclass(frozen=True)
class Field:
    """Receptive field ``size`` and ``jump`` (effective stride), each (height, width), in input pixels."""

    size: tuple[int, int]
    jump: tuple[int, int]


def step(field: Field, kernel, stride, dilation=(1, 1)) -> Field:
    """The field after one window layer (``kernel``, ``stride``, ``dilation`` as (h, w) pairs)."""
    size = tuple(r + (d * (k - 1) + 1 - 1) * j for r, k, d, j in zip(field.size, kernel, dilation, field.jump))
    jump = tuple(j * s for j, s in zip(field.jump, stride))
    return Field(size, jump)


def stack_receptive_field(kernels, strides, dilations=None) -> tuple[int, int]:
    """``(receptive field, jump)`` along one axis of a plain stack of windows."""
    dilations = dilations or [1] * len(kernels)
    f = Field((1, 1), (1, 1))
    for k, s, d in zip(kernels, strides, dilations):
        f = step(f, (k, k), (s, s), (d, d))
    return f.size[0], f.jump[0]


def receptive_fields(net, input_shape=None) -> dict[str, Field]:
    """The :class:`Field` of every node (and ``"input"``), from shapes alone."""
    shapes = net.shapes(input_shape)
    fields = {INPUT: Field((1, 1), (1, 1))}
    for node in net.nodes:
        ins = [fields[i] for i in node.inputs]
        f = Field(tuple(max(v) for v in zip(*(x.size for x in ins))), tuple(max(v) for v in zip(*(x.jump for x in ins))))
        window = layer_cost(node.layer, [shapes[i] for i in node.inputs], shapes[node.name]).window
        if isinstance(window, Window):
            f = step(f, window.kernel, window.stride, window.dilation)
        elif window == GLOBAL:
            hw = shapes[node.inputs[0]][:2]
            f = step(f, hw, hw)
        fields[node.name] = f
    return fields
