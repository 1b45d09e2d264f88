"""Constant folding: ONNX ops whose inputs are all known at import time, computed with NumPy.

Exported models compute their constants in the graph: weights as ``ConstantOfShape`` of a
shape, a Reshape target as ``Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])``, a per-channel
scale as ``Unsqueeze`` of a vector.  Each function here takes the node (``n``, see
:class:`~convnet.interop.onnx.importer.NodeView`) whose inputs are :class:`~.values.Const` and
returns its output values.  A shape vector made by ``Shape`` of an activation carries a
``batch`` mask through Gather, Unsqueeze, Squeeze, Concat, Slice, Cast and Identity; arithmetic
on the batch size is refused (the net must not depend on it).

Sizes are checked before anything is allocated (``ConstantOfShape``, a broadcast, a matrix
product): at most the model's ``max_bytes`` (:data:`~.reader.MAX_TENSOR_BYTES` by default); a
claim over it is a DataFormatError.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import DataFormatError
from .reader import DTYPES
from .values import Const

__all__ = ["FOLDS"]


def _value(n, i: int) -> np.ndarray:
    return n.inputs[i].value


def _mask(n, i: int):
    c = n.inputs[i]
    return c.batch if c is not None and c.has_batch else None


def _no_batch(n) -> None:
    if any(c is not None and c.has_batch for c in n.inputs):
        raise n.fail("computes with the batch size (from Shape of an activation); convnet nets do not depend on "
                     "the batch size")


def _check_size(n, shape, dtype) -> tuple[int, ...]:
    """``shape`` when a tensor of it fits the cap; DataFormatError before anything is allocated."""
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise n.fail(f"asks for a tensor of negative size {list(shape)}", DataFormatError)
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    cap = n.b.graph.max_bytes
    if nbytes > cap:
        raise n.fail(f"asks for a constant of {list(shape)} = {nbytes} bytes, over the cap of {cap} bytes (max_bytes)",
                     DataFormatError)
    return shape


def _axes(n, rank: int, axes) -> list[int]:
    out = []
    for a in axes:
        a = int(a)
        if not -rank <= a < rank:
            raise n.fail(f"has axis {a} out of range for rank {rank}")
        out.append(a % rank)
    return out


def _axes_input(n, index: int, attr: str = "axes"):
    """``axes`` from an input (opset 13 on) or the attribute (before); None when neither gives it."""
    if len(n.inputs) > index and n.inputs[index] is not None:
        return [int(a) for a in np.asarray(_value(n, index)).reshape(-1)]
    value = n.attrs.get(attr)
    return None if value is None else list(value)


# -- making constants ------------------------------------------------------------------------
def constant(n):
    """``Constant``: its one ``value*`` attribute."""
    given = [k for k in ("value", "value_float", "value_floats", "value_int", "value_ints") if k in n.attrs]
    if len(given) != 1:
        raise n.unsupported("value", sorted(n.attrs), "exactly one of value, value_float(s), value_int(s)")
    key = given[0]
    v = n.attrs[key]
    if key == "value":
        return [Const(np.asarray(v))]
    dtype = np.float32 if "float" in key else np.int64
    return [Const(np.asarray(v, dtype=dtype))]


def constant_of_shape(n):
    _no_batch(n)
    value = n.attrs.get("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    if fill.size != 1:
        raise n.unsupported("value", fill.shape, "a one-element tensor")
    shape = _check_size(n, np.asarray(_value(n, 0)).reshape(-1), fill.dtype)
    return [Const(np.full(shape, fill[0], dtype=fill.dtype))]


def shape(n):
    """``Shape`` of a constant (``start``/``end`` from opset 15)."""
    dims = np.asarray(_value(n, 0).shape, dtype=np.int64)
    return [Const(dims[_shape_slice(n, len(dims))])]


def _shape_slice(n, rank: int) -> slice:
    start, end = int(n.attrs.get("start", 0)), n.attrs.get("end")
    return slice(start, None if end is None else int(end))


# -- moving constants --------------------------------------------------------------------------
def identity(n):
    return [n.inputs[0]]


def cast(n):
    to = DTYPES.get(int(n.attrs.get("to", 0)))
    if to is None:
        raise n.unsupported("to", n.attrs.get("to"), sorted(str(d) for d in DTYPES.values()))
    c = n.inputs[0]
    return [Const(np.asarray(c.value).astype(to), c.batch)]


def unsqueeze(n):
    x, mask = _value(n, 0), _mask(n, 0)
    axes = _axes_input(n, 1)
    if axes is None:
        raise n.fail("gives no `axes`")
    axes = sorted(_axes(n, x.ndim + len(axes), axes))
    y = x
    for a in axes:
        y = np.expand_dims(y, a)
    m = None
    if mask is not None:
        m = mask
        for a in axes:
            m = np.expand_dims(m, a)
    return [Const(y, m)]


def squeeze(n):
    x, mask = _value(n, 0), _mask(n, 0)
    axes = _axes_input(n, 1)
    axes = [i for i, d in enumerate(x.shape) if d == 1] if axes is None else _axes(n, x.ndim, axes)
    if any(x.shape[a] != 1 for a in axes):
        raise n.fail(f"squeezes axes {axes} of a constant of shape {list(x.shape)}, which are not all of size 1")
    return [Const(np.squeeze(x, axis=tuple(axes)), None if mask is None else np.squeeze(mask, axis=tuple(axes)))]


def gather(n):
    x, mask = _value(n, 0), _mask(n, 0)
    idx = np.asarray(_value(n, 1))
    if idx.dtype.kind not in "iu":
        raise n.fail(f"has indices of type {idx.dtype}; expected integers")
    axis = _axes(n, x.ndim, [n.attrs.get("axis", 0)])[0] if x.ndim else 0
    size = x.shape[axis] if x.ndim else 0
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise n.fail(f"gathers indices {idx.tolist()} from an axis of size {size}")
    idx = np.where(idx < 0, idx + size, idx)
    return [Const(np.take(x, idx, axis=axis), None if mask is None else np.take(mask, idx, axis=axis))]


def concat(n):
    parts = [c for c in n.inputs if c is not None]
    arrays = [np.asarray(c.value) for c in parts]
    if not arrays or any(a.ndim == 0 for a in arrays):
        raise n.fail("concatenates scalars or nothing")
    axis = _axes(n, arrays[0].ndim, [n.attrs.get("axis", 0)])[0]
    try:
        y = np.concatenate(arrays, axis=axis)
    except ValueError as exc:
        raise n.fail(f"concatenates constants that do not fit ({exc})") from None
    masks = None
    if any(c.has_batch for c in parts):
        masks = np.concatenate([c.batch if c.has_batch else np.zeros(a.shape, bool) for c, a in zip(parts, arrays)],
                               axis=axis)
    return [Const(y, masks)]


def slice_(n):
    x, mask = _value(n, 0), _mask(n, 0)
    if n.opset < 10:
        starts, ends = n.attrs.get("starts"), n.attrs.get("ends")
        axes, steps = n.attrs.get("axes"), None
    else:
        starts, ends = (np.asarray(_value(n, i)).reshape(-1).tolist() for i in (1, 2))
        axes = np.asarray(_value(n, 3)).reshape(-1).tolist() if len(n.inputs) > 3 and n.inputs[3] is not None else None
        steps = np.asarray(_value(n, 4)).reshape(-1).tolist() if len(n.inputs) > 4 and n.inputs[4] is not None else None
    if starts is None or ends is None:
        raise n.fail("gives no starts or ends")
    axes = list(range(len(starts))) if axes is None else _axes(n, x.ndim, axes)
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise n.fail("has starts, ends, axes and steps of different lengths, or a zero step")
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        index[a] = slice(int(s), int(e), int(st))
    index = tuple(index)
    return [Const(x[index], None if mask is None else mask[index])]


def reshape(n):
    _no_batch(n)
    x = _value(n, 0)
    target = [int(d) for d in np.asarray(_value(n, 1)).reshape(-1)]
    allowzero = int(n.attrs.get("allowzero", 0))
    shape = [x.shape[i] if d == 0 and not allowzero and i < x.ndim else d for i, d in enumerate(target)]
    try:
        return [Const(x.reshape(shape))]
    except ValueError:
        raise n.fail(f"reshapes a constant of shape {list(x.shape)} to {target}") from None


def flatten(n):
    _no_batch(n)
    x = _value(n, 0)
    axis = _axes(n, x.ndim + 1, [n.attrs.get("axis", 1)])[0]
    return [Const(x.reshape(math.prod(x.shape[:axis]), -1))]


def transpose(n):
    _no_batch(n)
    x = _value(n, 0)
    perm = n.attrs.get("perm")
    perm = list(range(x.ndim))[::-1] if perm is None else _axes(n, x.ndim, perm)
    if sorted(perm) != list(range(x.ndim)):
        raise n.unsupported("perm", perm, f"a permutation of 0..{x.ndim - 1}")
    return [Const(np.transpose(x, perm))]


# -- arithmetic ----------------------------------------------------------------------------------
def _elementwise(fn):
    def fold(n):
        _no_batch(n)
        arrays = [np.asarray(c.value) for c in n.inputs if c is not None]
        try:
            shape = np.broadcast_shapes(*(a.shape for a in arrays))
        except ValueError:
            raise n.fail(f"combines constants of shapes {[list(a.shape) for a in arrays]}, which do not broadcast") \
                from None
        _check_size(n, shape, np.result_type(*arrays))
        with np.errstate(all="ignore"):
            y = fn(*arrays)
        return [Const(np.asarray(y).astype(np.result_type(*arrays), copy=False))]
    return fold


def _sum(*arrays):
    y = arrays[0]
    for a in arrays[1:]:
        y = y + a
    return y


def _div(a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(b == 0):
            raise ZeroDivisionError
        return np.trunc(a / b).astype(np.result_type(a, b))  # ONNX integer Div truncates
    return a / b


def div(n):
    try:
        return _elementwise(_div)(n)
    except ZeroDivisionError:
        raise n.fail("divides integer constants by zero") from None


def clip(n):
    _no_batch(n)
    x = _value(n, 0)
    if n.opset < 11:
        lo, hi = n.attrs.get("min"), n.attrs.get("max")
    else:
        lo = _value(n, 1) if len(n.inputs) > 1 and n.inputs[1] is not None else None
        hi = _value(n, 2) if len(n.inputs) > 2 and n.inputs[2] is not None else None
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo, dtype=x.dtype))
    if hi is not None:
        y = np.minimum(y, np.asarray(hi, dtype=x.dtype))
    return [Const(y.astype(x.dtype))]


def _leaky(n):
    _no_batch(n)
    x = _value(n, 0)
    alpha = float(n.attrs.get("alpha", 0.01))
    return [Const(np.where(x >= 0, x, x * x.dtype.type(alpha)).astype(x.dtype))]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def matmul(n):
    _no_batch(n)
    a, b = _value(n, 0), _value(n, 1)
    if a.ndim == 2 and b.ndim == 2:
        _check_size(n, (a.shape[0], b.shape[1]), np.result_type(a, b))
    elif a.ndim != 2 or b.ndim != 2:
        raise n.fail(f"multiplies constants of shapes {list(a.shape)} and {list(b.shape)}; convnet folds matrix "
                     "products of matrices")
    try:
        return [Const(np.matmul(a, b))]
    except ValueError:
        raise n.fail(f"multiplies constants of shapes {list(a.shape)} and {list(b.shape)}") from None


def dropout(n):
    """Dropout at inference is the identity (its mask output is refused by the importer)."""
    return [n.inputs[0]]


#: op -> fold function, for nodes whose inputs are all constants
FOLDS = {
    "Constant": constant,
    "ConstantOfShape": constant_of_shape,
    "Shape": shape,
    "Identity": identity,
    "Cast": cast,
    "Unsqueeze": unsqueeze,
    "Squeeze": squeeze,
    "Gather": gather,
    "Concat": concat,
    "Slice": slice_,
    "Reshape": reshape,
    "Flatten": flatten,
    "Transpose": transpose,
    "Dropout": dropout,
    "Add": _elementwise(lambda a, b: a + b),
    "Sub": _elementwise(lambda a, b: a - b),
    "Mul": _elementwise(lambda a, b: a * b),
    "Div": div,
    "Sum": _elementwise(_sum),
    "Neg": _elementwise(np.negative),
    "Sqrt": _elementwise(np.sqrt),
    "Reciprocal": _elementwise(np.reciprocal),
    "Relu": _elementwise(lambda x: np.maximum(x, 0)),
    "Sigmoid": _elementwise(_sigmoid),
    "LeakyRelu": _leaky,
    "Clip": clip,
    "MatMul": matmul,
}
