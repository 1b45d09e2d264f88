"""Merge layers: the nodes where branches of a :class:`~convnet.net.Net` meet.

A merge layer takes a *list* of inputs instead of one array; it says so with
``multi_input = True``, and the net hands it ``[x0, x1, ...]`` in the order of
the node's ``inputs``.  ``backward(dy)`` returns a list of gradients in the
same order.

* :class:`Add` — elementwise sum, the residual connection of ResNets::

      xs: k arrays of shape (N, *S)  ->  y = Σ xs  of shape (N, *S)
      dx_i = dy for every input (the same array, never written to)

* :class:`Concat` — concatenation along the channel axis (the last axis in
  NHWC), the Inception module's "filter concatenation"::

      xs: (N, H, W, C_i)  ->  y (N, H, W, Σ C_i)
      dx_i = dy[..., offset_i : offset_i + C_i]

Neither has parameters; neither keeps anything but shapes for backward.
"""
from __future__ import annotations

import math

from ..backend import check_float_array, get_array_module
from ..errors import ConfigError, ShapeError
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
        if into is None:
            y = xs[0] + xs[1]
        else:
            y = get_array_module(xs[into]).add(xs[0], xs[1], out=xs[into])
        for x in xs[2:]:
            y += x
        self._cache = len(xs) if keep_cache else None
        return y

    def backward(self, dy):
        n = self._take_cache()
        return [dy] * n

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """``k − 1`` additions per value for ``k`` inputs; nothing backward (``dy`` passes on)."""
        return LayerCost(0, 0, 0, (len(input_shapes) - 1) * math.prod(output_shape), 0)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps nothing; backward hands ``dy`` itself to every input."""
        return Footprint(dx_is_dy=True)


class Concat(MergeLayer):
    """Concatenate inputs along the channel (last) axis; other axes must agree."""

    kind = "CONCAT"
    name_prefix = "concat"

    def __init__(self, *, axis: int = -1, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if axis != -1:
            raise ConfigError(f"Argument `axis` must be -1 (the NHWC channel axis); received {axis!r}.")
        self.axis = axis

    def output_shape(self, input_shapes) -> tuple[int, ...]:
        shapes = self._shapes(input_shapes)
        first = shapes[0]
        if any(len(s) != len(first) or s[:-1] != first[:-1] for s in shapes[1:]):
            raise ShapeError(
                f"{self.label}: inputs must agree on every axis but the channel axis; received {shapes}."
            )
        return first[:-1] + (sum(s[-1] for s in shapes),)

    def forward(self, xs, *, train: bool = False, keep_cache: bool = True):
        xs = self._check_inputs(xs)
        xp = get_array_module(*xs)
        y = xp.concatenate(xs, axis=-1)
        self._cache = [x.shape[-1] for x in xs] if keep_cache else None
        return y

    def backward(self, dy):
        widths = self._take_cache()
        xp = get_array_module(dy)
        out, start = [], 0
        for c in widths:
            out.append(xp.ascontiguousarray(dy[..., start : start + c]))
            start += c
        return out

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """No arithmetic: copies."""
        return elementwise_cost(output_shape, 0, 0)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps the channel counts only; no scratch."""
        return Footprint()
