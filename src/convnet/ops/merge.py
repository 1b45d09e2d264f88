"""Ops with several inputs: elementwise sum, elementwise product, concatenation.

Each takes a *list* of arrays and its backward returns a list of gradients in the same order::

    add:     y = Σ xs                     (same shapes)         dx_i = dy (the same array for all)
    mul:     y = Π xs                     (broadcast per sample) dx_i = Σ_broadcast dy · Π_{j≠i} x_j
    concat:  y = [x_0 | x_1 | ...]        along ``axis``         dx_i = dy[..., offset_i : offset_i + size_i, ...]

``mul`` broadcasts the *per-sample* shapes as NumPy does (aligned to the right), the batch axis
shared: ``(N, H, W, C) · (N, C)`` scales each channel of each image (a squeeze-and-excitation
gate), ``(N, H, W, C) · (N, H, W, 1)`` each position.  Every input must have the same batch size
and dtype.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import check_float_array, get_array_module
from ..errors import ConfigError, DTypeError, ShapeError
from .checks import check_grad_shape
from .geometry import is_int


def check_inputs(xs, op: str, *, minimum: int = 2) -> list:
    """``xs``: a list of at least ``minimum`` float arrays of one dtype and one batch size."""
    if not isinstance(xs, (list, tuple)) or len(xs) < minimum:
        got = f"{len(xs)} arrays" if isinstance(xs, (list, tuple)) else type(xs).__name__
        raise ShapeError(f"{op}: expects a list of at least {minimum} arrays; received {got}.")
    for i, x in enumerate(xs):
        check_float_array(x, f"xs[{i}]")
        if x.ndim < 1:
            raise ShapeError(f"{op}: `xs[{i}]` must have a batch axis; received a scalar.")
    if len({x.dtype for x in xs}) != 1:
        raise DTypeError(f"{op}: all inputs must have the same dtype; received {[str(x.dtype) for x in xs]}.")
    if len({x.shape[0] for x in xs}) != 1:
        raise ShapeError(f"{op}: all inputs must have the same batch size; received shapes "
                         f"{[tuple(x.shape) for x in xs]}.")
    return list(xs)


# -- add ------------------------------------------------------------------------------------
def add_forward(xs, *, into=None):
    """``y = xs[0] + xs[1] + ...`` (identical shapes): returns ``(y, len(xs))``.

    ``into`` (0 or 1, or None): write the sum into that input (the first sum ``xs[0] + xs[1]``
    can go into either: the same additions in the same order, the same bits).
    """
    xs = check_inputs(xs, "add")
    if any(x.shape != xs[0].shape for x in xs[1:]):
        raise ShapeError(f"add: all inputs must have the same shape; received {[tuple(x.shape) for x in xs]}.")
    if into is None:
        y = xs[0] + xs[1]
    else:
        if into not in (0, 1):
            raise ConfigError(f"add: `into` must be 0, 1 or None; received into={into!r}.")
        y = get_array_module(xs[into]).add(xs[0], xs[1], out=xs[into])
    for x in xs[2:]:
        y += x
    return y, len(xs)


def add_backward(dy, cache):
    """``[dy] * n``: every input gets ``dy`` itself (never written to by the sum's backward)."""
    check_float_array(dy, "dy")
    return [dy] * cache


# -- mul ------------------------------------------------------------------------------------
def broadcast_shape(shapes, op: str = "mul") -> tuple[int, ...]:
    """The per-sample shape of the product of inputs of per-sample ``shapes`` (NumPy's rule,
    aligned to the right); ShapeError when they do not broadcast."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ShapeError(f"{op}: per-sample shapes {[tuple(s) for s in shapes]} do not broadcast (aligned to "
                             f"the right, each axis must agree or be 1).")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


@dataclass
class MulCache:
    xs: list  # the inputs viewed with their per-sample shapes padded to one rank (references)
    shapes: list  # the inputs' own shapes


def _expanded(x, rank: int):
    """``x (N, *s)`` viewed as ``(N, 1, ..., 1, *s)`` of rank ``rank + 1``."""
    return x.reshape((x.shape[0],) + (1,) * (rank - (x.ndim - 1)) + tuple(x.shape[1:]))


def mul_forward(xs):
    """``y = xs[0] · xs[1] · ...`` with per-sample broadcasting: returns ``(y, cache)`` (the cache
    keeps references to the inputs)."""
    xs = check_inputs(xs, "mul")
    out = broadcast_shape([x.shape[1:] for x in xs])
    views = [_expanded(x, len(out)) for x in xs]
    y = views[0] * views[1]
    for v in views[2:]:
        y *= v
    return y, MulCache(views, [tuple(x.shape) for x in xs])


def mul_backward(dy, cache: MulCache):
    """``dx_i = dy · Π_{j≠i} x_j``, summed over the axes along which ``x_i`` was broadcast."""
    xs = cache.xs
    out = (dy.shape[0],) + broadcast_shape([v.shape[1:] for v in xs])
    check_grad_shape(dy, out, "mul_backward")
    grads = []
    for i, v in enumerate(xs):
        g = dy
        for j, other in enumerate(xs):
            if j != i:
                g = g * other
        axes = tuple(a for a in range(1, g.ndim) if v.shape[a] == 1 and g.shape[a] != 1)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        grads.append(g.reshape(cache.shapes[i]))
    return grads


# -- concat ---------------------------------------------------------------------------------
@dataclass
class ConcatCache:
    sizes: list  # each input's extent along the axis
    axis: int  # non-negative


def concat_axis(axis, ndim: int, op: str = "concat") -> int:
    """``axis`` of a rank-``ndim`` batch as a non-negative axis; not the batch axis 0."""
    if not is_int(axis) or not -ndim <= axis < ndim:
        raise ConfigError(f"{op}: `axis` must be an int in [{-ndim}, {ndim - 1}]; received axis={axis!r}.")
    a = int(axis) % ndim
    if a == 0:
        raise ConfigError(f"{op}: `axis` {axis} is the batch axis; concatenate along a per-sample axis "
                          f"(-1: the channels of NHWC).")
    return a


def concat_forward(xs, *, axis=-1):
    """Concatenate along ``axis`` (default -1: the channels of NHWC); the other axes must agree:
    returns ``(y, cache)`` (the cache holds the sizes only)."""
    xs = check_inputs(xs, "concat", minimum=1)
    a = concat_axis(axis, xs[0].ndim)
    first = xs[0].shape
    if any(x.ndim != len(first) or x.shape[:a] + x.shape[a + 1:] != first[:a] + first[a + 1:] for x in xs[1:]):
        raise ShapeError(f"concat: inputs must agree on every axis but axis {a}; received "
                         f"{[tuple(x.shape) for x in xs]}.")
    y = get_array_module(*xs).concatenate(xs, axis=a)
    return y, ConcatCache([x.shape[a] for x in xs], a)


def concat_backward(dy, cache: ConcatCache):
    """The slices of ``dy`` along the axis, each a contiguous copy."""
    check_float_array(dy, "dy")
    xp = get_array_module(dy)
    a = cache.axis
    if dy.ndim <= a or dy.shape[a] != sum(cache.sizes):
        raise ShapeError(f"concat_backward: upstream gradient `dy` must have {sum(cache.sizes)} entries along "
                         f"axis {a}; received shape {tuple(dy.shape)}.")
    out, start = [], 0
    index = [slice(None)] * dy.ndim
    for size in cache.sizes:
        index[a] = slice(start, start + size)
        out.append(xp.ascontiguousarray(dy[tuple(index)]))
        start += size
    return out

