"""ONNX ops that move an activation's axes: mostly no layer at all, only a new layout.

convnet nets are per sample: axis 0 is the batch and no op may move it, merge samples or depend
on the batch size.  Within a sample (see :mod:`.values` for the layouts):

* **Flatten** (axis 1) and **Reshape** of a map: the map's node in layout HWC_FLAT (the FC that
  reads the vector permutes its weight rows; a Reshape back to the map is the map again); of a
  PLAIN value: the same node, a new shape.
  Reshape's target takes the batch from the input — its first entry may be ``0``, ``-1``, the
  batch size the model declares, or the batch size read by ``Shape`` — and handles ``0`` (copy)
  and ``-1`` (infer) in the per-sample entries.
* **Squeeze/Unsqueeze** of size-1 axes: the values' order is unchanged.
* **Transpose** ``(0, 2, 3, 1)`` of an NCHW map is convnet's own NHWC order (PLAIN); ``(0, 3, 1, 2)``
  of such a value is the map again; moves of size-1 axes change nothing; ShuffleNet's channel
  shuffle ``Reshape (g, C/g, H, W) → Transpose (0, 2, 1, 3, 4) → Reshape (C, H, W)`` becomes one
  ChannelShuffle layer.  Any other permutation is refused.
* **Shape** of an activation is a constant whose batch entry is marked; **Identity**, a **Cast**
  to the net's float type and **Dropout** (inference, in ops_layers) pass the value on.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ... import layers as L
from .ops_layers import make
from .values import HWC_FLAT, NCHW, PLAIN, SPLIT, Act, Const, as_plain, nchw_to_nhwc, normalized


def _fmt(shape) -> str:
    return f"(N, {', '.join(map(str, shape))})"


def identity(b, n):
    return n.act(0)


def cast(b, n):
    x = n.act(0)
    to = int(n.attr("to", 0))
    if to not in (1, 11) or (to == 1) != (b.dtype == np.float32):
        raise n.unsupported("to", to, f"the net's own float type ({'FLOAT' if b.dtype == np.float32 else 'DOUBLE'})")
    return x


def shape(b, n):
    x = n.act(0)
    dims = np.asarray([b.batch or 1, *x.shape], dtype=np.int64)
    batch = np.zeros(len(dims), bool)
    batch[0] = True
    s = slice(int(n.attr("start", 0)), None if n.attr("end") is None else int(n.attr("end")))
    return Const(dims[s], batch[s])


def flatten(b, n):
    x = n.act(0)
    r = x.rank
    given = int(n.attr("axis", 1))
    if not -r <= given <= r:
        raise n.unsupported("axis", given, f"an axis in [-{r}, {r}]")
    axis = given + r if given < 0 else given
    if axis == 0 or math.prod(x.shape[: axis - 1]) != 1:
        raise n.unsupported("axis", given, "1, which flattens each sample (this one merges samples into a row "
                                           "or splits a sample across rows)")
    return to_vector(n, x, (x.size,))


def to_vector(n, x: Act, target) -> Act:
    """``x`` seen as the per-sample ONNX shape ``target`` (a reshape): a map's node in layout
    HWC_FLAT (ONNX's values are its CHW order, reshaped), a PLAIN value with a new shape."""
    if x.layout == NCHW:
        return normalized(Act(x.node, tuple(target), HWC_FLAT, x.cshape, hwc=x.cshape))
    if x.layout == PLAIN:
        return replace(x, shape=tuple(target))
    elif x.layout == HWC_FLAT:
        return replace(x, shape=tuple(target))
    raise n.fail(f"reshapes an ONNX tensor of shape {_fmt(x.shape)} held as {x.layout} to {_fmt(target)}, which "
                 "convnet cannot follow")


def _target(b, n, x: Act) -> tuple[int, ...]:
    """The per-sample shape a Reshape asks for (see the module docstring for the batch entry)."""
    c = n.inputs[1]
    if not isinstance(c, Const):
        raise n.fail("has a shape computed from activations; convnet needs it constant")
    t = [int(v) for v in np.asarray(c.value).reshape(-1)]
    mask = np.asarray(c.batch).reshape(-1) if c.has_batch else np.zeros(len(t), bool)
    allowzero = int(n.attr("allowzero", 0))
    if not t:
        raise n.fail("reshapes to a scalar, which has no batch axis")
    if mask[1:].any():
        raise n.fail(f"puts the batch size at position {int(np.argmax(mask[1:])) + 1} of its target {t}; it must "
                     "stay first")
    first = t[0]
    if not (mask[0] or first == -1 or (first == 0 and not allowzero) or (b.batch and first == b.batch)):
        raise n.fail(f"reshapes to {t}, whose first entry {first} is not the batch (0, -1, or the model's batch size "
                     f"{b.batch}); convnet nets keep the batch axis")
    per = t[1:]
    if allowzero and 0 in per:
        raise n.unsupported("allowzero", allowzero, "0, or a target without zeros")
    per = [x.shape[i] if d == 0 and i < len(x.shape) else d for i, d in enumerate(per)]
    if per.count(-1) > 1 or any(d < -1 or d == 0 for d in per):
        raise n.fail(f"has the target {t}, which convnet cannot resolve")
    known = math.prod(d for d in per if d != -1)
    if -1 in per:
        if known == 0 or x.size % known:
            raise n.fail(f"reshapes {x.size} values per sample to {t}")
        per[per.index(-1)] = x.size // known
    if first == -1 and math.prod(per) != x.size:
        raise n.fail(f"reshapes {x.size} values per sample to {t}: that moves values between samples")
    if math.prod(per) != x.size:
        raise n.fail(f"reshapes {x.size} values per sample to {per}")
    return tuple(per)


def reshape(b, n):
    x = n.act(0)
    target = _target(b, n, x)
    if target == x.shape:
        return x
    if x.layout == NCHW and len(target) == 4:
        c, h, w = x.shape
        g, cg, th, tw = target
        if (th, tw) == (h, w) and g * cg == c:
            return replace(x, shape=target, layout=SPLIT, hwc=x.cshape, groups=g, swapped=False)
    if x.layout == SPLIT:
        if target != (x.hwc[2], x.hwc[0], x.hwc[1]):
            raise n.fail(f"reshapes a channel-split map to {_fmt(target)}; convnet follows only the channel shuffle "
                         "Reshape → Transpose → Reshape back")
        if not x.swapped:
            return Act(x.node, target, NCHW, x.cshape)
        layer = make(n, L.ChannelShuffle, x.groups)
        name, cshape = b.add(n, layer, [replace(x, layout=NCHW)])
        return Act(name, target, NCHW, cshape)
    if x.layout == HWC_FLAT and len(target) == 3 and tuple(nchw_to_nhwc(target)) == tuple(x.hwc) \
            and tuple(x.cshape) == tuple(x.hwc):
        return Act(x.node, target, NCHW, x.cshape)  # a flattened map, unflattened
    if x.layout == PLAIN and len(target) == 3 and tuple(x.cshape) == tuple(nchw_to_nhwc(target)) and \
            as_plain(Act(x.node, target, NCHW, x.cshape)) is not None:
        return Act(x.node, target, NCHW, x.cshape)  # a one-channel or one-pixel map, back as a map
    return to_vector(n, x, target)


def squeeze(b, n):
    x = n.act(0)
    axes = _axes(n, x.rank, 1)
    if axes is None:
        if not (b.batch and b.batch > 1):
            raise n.fail("squeezes every axis of size 1 without naming them; with a batch of 1 that would remove "
                         "the batch axis too: give `axes`")
        axes = [i + 1 for i, d in enumerate(x.shape) if d == 1]
    if 0 in axes:
        raise n.unsupported("axes", axes, "per-sample axes (axis 0 is the batch)")
    if any(x.shape[a - 1] != 1 for a in axes):
        raise n.fail(f"squeezes axes {axes} of {_fmt(x.shape)}, which are not all of size 1")
    target = tuple(d for i, d in enumerate(x.shape) if i + 1 not in axes)
    return _relabel(n, x, target)


def unsqueeze(b, n):
    x = n.act(0)
    count = len(_axes_raw(n, 1) or [])
    axes = _axes(n, x.rank + count, 1)
    if axes is None:
        raise n.fail("gives no axes")
    if 0 in axes:
        raise n.unsupported("axes", axes, "per-sample axes (axis 0 is the batch)")
    target = list(x.shape)
    for a in sorted(axes):
        target.insert(a - 1, 1)
    return _relabel(n, x, tuple(target))


def _relabel(n, x: Act, target) -> Act:
    """``x`` with size-1 axes added or removed: the values keep their order."""
    if x.layout == NCHW:
        p = as_plain(x)
        if p is None:
            if len(target) == 1:
                return to_vector(n, x, target)
            raise n.fail(f"turns the map {_fmt(x.shape)} into {_fmt(target)}, which convnet cannot hold")
        x = p
    if x.layout in (PLAIN, HWC_FLAT):
        return replace(x, shape=tuple(target))
    raise n.fail(f"reshapes a tensor held as {x.layout}")


def _axes_raw(n, index: int):
    if len(n.inputs) > index and n.inputs[index] is not None:
        return [int(a) for a in np.asarray(n.const(index, "axes")).reshape(-1)]
    v = n.attr("axes")
    return None if v is None else [int(a) for a in v]


def _axes(n, rank: int, index: int):
    raw = _axes_raw(n, index)
    if raw is None:
        return None
    out = []
    for a in raw:
        if not -rank <= a < rank:
            raise n.unsupported("axes", raw, f"axes of rank {rank}")
        out.append(a % rank)
    return out


def transpose(b, n):
    x = n.act(0)
    r = x.rank
    perm = n.attr("perm")
    perm = list(range(r))[::-1] if perm is None else [int(p) % r if -r <= int(p) < r else -1 for p in perm]
    if sorted(perm) != list(range(r)):
        raise n.unsupported("perm", n.attr("perm"), f"a permutation of 0..{r - 1}")
    if perm[0] != 0:
        raise n.unsupported("perm", perm, "permutations that keep the batch axis 0 first")
    target = tuple(x.shape[p - 1] for p in perm[1:])
    if perm == list(range(r)):
        return x
    if x.layout == NCHW and perm == [0, 2, 3, 1]:
        return Act(x.node, target, PLAIN, x.cshape)  # NHWC: what convnet holds
    if x.layout == PLAIN and r == 4 and perm == [0, 3, 1, 2] and tuple(x.cshape) == tuple(x.shape):
        return Act(x.node, target, NCHW, x.cshape)
    if x.layout == SPLIT and perm == [0, 2, 1, 3, 4]:
        return replace(x, shape=target, swapped=not x.swapped)
    moved = [p for p in perm[1:] if x.shape[p - 1] != 1]
    if moved == sorted(moved) and as_plain(x) is not None:  # only size-1 axes move: the order stays
        return replace(as_plain(x), shape=target)
    raise n.unsupported("perm", perm, f"NCHW ↔ NHWC, a channel shuffle, or moves of size-1 axes (the input is "
                                      f"{_fmt(x.shape)} held as {x.layout})")
