"""Merge layers: the nodes where branches of a :class:`~convnet.net.Net` meet.

A merge layer takes a *list* of inputs instead of one array; it says so with
``multi_input = True``, and the net hands it ``[x0, x1, ...]`` in the order of
the node's ``inputs``.  ``backward(dy)`` returns a list of gradients in the
same order.

* :class:`Add` — elementwise sum, the residual connection of ResNets::

      xs: k arrays of shape (N, *S)  ->  y = Σ xs  of shape (N, *S)
      dx_i = dy for every input (the same array, never written to)

* :class:`Concat` — concatenation along the channel axis (the last axis in
  NHWC; ``axis=`` another per-sample axis), the Inception module's "filter concatenation"::

      xs: (N, H, W, C_i)  ->  y (N, H, W, Σ C_i)
      dx_i = dy[..., offset_i : offset_i + C_i]

* :class:`Mul` — elementwise product, the per-sample shapes broadcast (aligned to the right), so
  ``(H, W, C) · (C,)`` is a squeeze-and-excitation gate::

      y = Π xs,    dx_i = dy · Π_{j≠i} x_j   (summed over the axes x_i was broadcast along)

None has parameters; Add and Concat keep nothing but shapes for backward, Mul its inputs.  The
math is :mod:`convnet.ops.merge`.
"""
from __future__ import annotations

import math

from ..backend import check_float_array
from ..errors import ConfigError, ShapeError
from ..ops.geometry import is_int
from ..ops.merge import (
    add_backward,
    add_forward,
    broadcast_shape,
    concat_backward,
    concat_forward,
    mul_backward,
    mul_forward,
)
from .accounting import Footprint, LayerCost, elementwise_cost
from .base import Layer


class MergeLayer(Layer):
    """Base class of layers that combine several inputs (``multi_input = True``)."""

    multi_input = True

    def _shapes(self, input_shapes) -> list[tuple[int, ...]]:
        if not isinstance(input_shapes, (list, tuple)) or not input_shapes or not all(
            isinstance(s, (list, tuple)) for s in input_shapes
        ):
            raise ShapeError(
                f"{self.label}: expects a list of at least two per-sample input shapes; received {input_shapes!r}."
            )
        shapes = [tuple(int(d) for d in s) for s in input_shapes]
        if len(shapes) < 2:
            raise ShapeError(f"{self.label}: expects at least two inputs; received {len(shapes)} ({shapes}).")
        return shapes

    def build(self, input_shapes, *, rng=None, xp=None) -> None:
        shapes = self._shapes(input_shapes)
        self.output_shape(shapes)  # raises on mismatch
        self.input_shape = tuple(shapes)

    def accepts(self, input_shapes) -> bool:
        """Built for the same number of inputs with the same channels (any height and width:
        a merge has no parameters, so a fully convolutional net can run on larger images)."""
        if not self.built:
            return False
        try:
            shapes = [tuple(int(d) for d in s) for s in input_shapes]
        except TypeError:
            return False
        if tuple(shapes) == tuple(self.input_shape):
            return True
        return len(shapes) == len(self.input_shape) and all(
            len(a) == len(b) == 3 and a[2] == b[2] for a, b in zip(shapes, self.input_shape)
        ) and self._valid(shapes)

    def _valid(self, shapes) -> bool:
        try:
            self.output_shape(shapes)
        except ShapeError:
            return False
        return True

    def _check_inputs(self, xs):
        if not isinstance(xs, (list, tuple)) or len(xs) < 2:
            raise ShapeError(f"{self.label}: forward expects a list of at least two arrays; received {type(xs).__name__}.")
        for i, x in enumerate(xs):
            check_float_array(x, f"xs[{i}]")
        shapes = [tuple(x.shape[1:]) for x in xs]
        batch = {x.shape[0] for x in xs}
        if len(batch) != 1:
            raise ShapeError(f"{self.label}: all inputs must have the same batch size; received shapes {[tuple(x.shape) for x in xs]}.")
        if not self.built:
            self.build(shapes)
        elif not self.accepts(shapes):
            raise ShapeError(
                f"{self.label}: inputs have per-sample shapes {shapes}, but the layer was built for {list(self.input_shape)}."
            )
        return xs


class Add(MergeLayer):
    """Elementwise sum of inputs of identical shape (the residual ``F(x) + x``)."""

    kind = "ADD"
    name_prefix = "add"
    inplace = True
    output_private = True

    def output_shape(self, input_shapes) -> tuple[int, ...]:
        shapes = self._shapes(input_shapes)
        if any(s != shapes[0] for s in shapes[1:]):
            raise ShapeError(
                f"{self.label}: all inputs must have the same shape to be added; received {shapes}. "
                "A residual block whose branch changes the shape needs a projection shortcut."
            )
        return shapes[0]

    def inplace_target(self, free) -> int | None:
        """The first of the first two inputs that may be overwritten: the sum starts as
        ``xs[0] + xs[1]``, which can go into either (the same sums in the same order)."""
        return next((j for j in (0, 1) if free[j]), None)

    def forward(self, xs, *, train: bool = False, keep_cache: bool = True, inplace=None):
        """``inplace`` (one bool per input): the sum may go into the input :meth:`inplace_target`
        picks among those marked."""
        xs = self._check_inputs(xs)
        into = None if inplace is None else self.inplace_target(inplace)
        y, cache = add_forward(xs, into=into)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return add_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``k − 1`` additions per value for ``k`` inputs; nothing backward (``dy`` passes on)."""
        return LayerCost(0, 0, 0, (len(input_shapes) - 1) * math.prod(output_shape), 0)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps nothing; backward hands ``dy`` itself to every input."""
        return Footprint(dx_is_dy=True)


class Concat(MergeLayer):
    """Concatenate inputs along ``axis`` (default -1, the NHWC channels); other axes must agree.

    ``Concat(*, axis=-1)`` — an axis of the batch array, not the batch axis 0 (``1``/``-3`` the
    height, ``2``/``-2`` the width of an NHWC map)."""

    kind = "CONCAT"
    name_prefix = "concat"

    def __init__(self, *, axis: int = -1, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not is_int(axis) or axis == 0:
            raise ConfigError(f"Argument `axis` must be a non-zero int (an axis of the batch array other than the "
                              f"batch axis; -1: the NHWC channels); received axis={axis!r}.")
        self.axis = int(axis)

    def _axis(self, rank: int) -> int:
        """The per-sample axis (0-based) for per-sample inputs of rank ``rank``."""
        if not -(rank + 1) < self.axis <= rank:
            raise ShapeError(f"{self.label}: axis {self.axis} is not a per-sample axis of inputs of per-sample rank "
                             f"{rank}; expected an axis in [{-rank}, -1] or [1, {rank}].")
        return self.axis % (rank + 1) - 1

    def output_shape(self, input_shapes) -> tuple[int, ...]:
        shapes = self._shapes(input_shapes)
        first = shapes[0]
        a = self._axis(len(first))
        if any(len(s) != len(first) or s[:a] + s[a + 1:] != first[:a] + first[a + 1:] for s in shapes[1:]):
            what = "the channel axis" if a == len(first) - 1 else f"axis {self.axis}"
            raise ShapeError(f"{self.label}: inputs must agree on every axis but {what}; received {shapes}.")
        return first[:a] + (sum(s[a] for s in shapes),) + first[a + 1:]

    def forward(self, xs, *, train: bool = False, keep_cache: bool = True):
        xs = self._check_inputs(xs)
        y, cache = concat_forward(xs, axis=self.axis)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return concat_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """No arithmetic: copies."""
        return elementwise_cost(output_shape, 0, 0)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps the channel counts only; no scratch."""
        return Footprint()


class Mul(MergeLayer):
    """Elementwise product of the inputs, their per-sample shapes broadcast as NumPy does (aligned
    to the right): ``(H, W, C) · (H, W, C)``, or ``(H, W, C) · (C,)`` — each channel scaled by a
    per-sample gate (squeeze-and-excitation: ``GAP -> FC -> RELU -> FC -> SIGMOID`` times the map).

    ``Mul()``; no parameters; the cache keeps references to the inputs (ONNX Mul of two tensors).
    """

    kind = "MUL"
    name_prefix = "mul"
    output_private = True
    grad_private = True

    def output_shape(self, input_shapes) -> tuple[int, ...]:
        shapes = self._shapes(input_shapes)
        return broadcast_shape(shapes, self.label)

    def accepts(self, input_shapes) -> bool:
        """Built for the same number of inputs of the same ranks and last axes, broadcasting."""
        if not self.built:
            return False
        try:
            shapes = [tuple(int(d) for d in s) for s in input_shapes]
        except TypeError:
            return False
        if tuple(shapes) == tuple(self.input_shape):
            return True
        return len(shapes) == len(self.input_shape) and all(
            len(a) == len(b) and a[-1:] == b[-1:] for a, b in zip(shapes, self.input_shape)
        ) and self._valid(shapes)

    def forward(self, xs, *, train: bool = False, keep_cache: bool = True):
        xs = self._check_inputs(xs)
        y, cache = mul_forward(xs)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return mul_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``k − 1`` multiplies per output value for ``k`` inputs forward; ``k·(k − 1)`` backward
        (each input's product of the others and ``dy``), plus the sums of broadcast inputs."""
        k, n = len(input_shapes), math.prod(output_shape)
        return LayerCost(0, 0, 0, (k - 1) * n, k * (k - 1) * n)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps references to its inputs; backward one product of output size per input at a time
        (and its reduction)."""
        a = batch * math.prod(output_shape) * itemsize
        return Footprint(keeps_input=train, backward_scratch=2 * a)
