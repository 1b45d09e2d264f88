"""What an ONNX value is on convnet's side: a constant, or an activation some node holds in a layout.

ONNX images are NCHW; convnet's are NHWC.  The importer moves the data once, at the graph
input, and from then on every activation is described by where it lives (a convnet node) and
how the values there relate to the ONNX tensor of the same name (its *layout*):

==========  =============================================  ===========================================
layout      ONNX tensor (per sample, ``shape``)              what the convnet node holds (``cshape``)
==========  =============================================  ===========================================
NCHW        a map ``(C, H, W)``                              the same map as ``(H, W, C)``
PLAIN       anything                                         the same values in the same order (a
                                                             reshape of them: ``(C,)`` for ``(C, 1, 1)``)
HWC_FLAT    the NCHW flatten of a map ``hwc`` = (H, W, C),   that map, or its NHWC flatten ``(H·W·C,)``
            reshaped to ``shape``
SPLIT       a channel shuffle under way: ``(g, C/g, H, W)``  the map ``(H, W, C)`` (``swapped``: the two
            of a map                                         channel axes were transposed)
==========  =============================================  ===========================================

A Reshape/Flatten of a map to a vector is therefore free (no layer): its value is the map's
node in layout HWC_FLAT, and the first FC that reads it gets its weight rows permuted from CHW
to HWC order (:func:`chw_rows_to_hwc`) — Dense flattens NHWC per sample.  Only a consumer that
needs the vector itself (a softmax over it, a graph output, a merge) makes a Flatten layer.
When ``C == 1`` or ``H·W == 1`` the two orders coincide and the value is simply PLAIN.

A :class:`Const` is a NumPy array in ONNX's layout; one made by ``Shape`` of an activation
marks the entries that are the batch size (``batch``), so that a Reshape target computed from
it takes the batch from the input and never from a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["NCHW", "PLAIN", "HWC_FLAT", "SPLIT", "Const", "Act", "chw_rows_to_hwc", "nchw_to_nhwc"]

NCHW, PLAIN, HWC_FLAT, SPLIT = "NCHW", "PLAIN", "HWC_FLAT", "SPLIT"


@dataclass(frozen=True)
class Const:
    """A value known at import time (ONNX layout, batch axis included if it has one)."""

    value: np.ndarray
    #: for a shape vector made by ``Shape`` of an activation: True where the entry is the batch size
    batch: np.ndarray | None = None

    @property
    def has_batch(self) -> bool:
        return self.batch is not None and bool(np.any(self.batch))


@dataclass(frozen=True)
class Act:
    """An activation: node ``node``'s output (per sample ``cshape``) seen as the ONNX tensor of
    per-sample ``shape`` through ``layout`` (see the module docstring)."""

    node: str
    shape: tuple[int, ...]
    layout: str
    cshape: tuple[int, ...]
    hwc: tuple[int, int, int] | None = None  # HWC_FLAT, SPLIT: the map (H, W, C)
    groups: int = 0  # SPLIT: g
    swapped: bool = False  # SPLIT: the (g, C/g) axes transposed

    @property
    def rank(self) -> int:
        """The ONNX rank, batch included."""
        return len(self.shape) + 1

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def channels(self) -> int | None:
        """The channel count convnet's last axis holds, where that is ONNX's axis 1 (NCHW maps,
        PLAIN ``(N, C)`` vectors); None otherwise."""
        if self.layout == NCHW:
            return self.shape[0]
        if self.layout == PLAIN and len(self.shape) == 1 and self.cshape[-1] == self.shape[0]:
            return self.shape[0]
        return None

    def with_node(self, node: str, cshape) -> Act:
        return replace(self, node=node, cshape=tuple(cshape))

    # -- moving arrays across the boundary -------------------------------------------------
    def to_onnx(self, y):
        """The ONNX tensor ``(N, *shape)`` for the convnet array ``y`` ``(N, *cshape)``."""
        n = y.shape[0]
        if self.layout == NCHW:
            return y.transpose(0, 3, 1, 2)
        if self.layout == PLAIN:
            return y.reshape(n, *self.shape)
        if self.layout == HWC_FLAT:
            h, w, c = self.hwc
            return y.reshape(n, h, w, c).transpose(0, 3, 1, 2).reshape(n, *self.shape)
        h, w, c = self.hwc  # SPLIT
        g = self.groups
        t = y.reshape(n, h, w, c).transpose(0, 3, 1, 2).reshape(n, g, c // g, h, w)
        return t.transpose(0, 2, 1, 3, 4) if self.swapped else t

    def from_onnx(self, x):
        """The convnet array ``(N, *cshape)`` for the ONNX tensor ``x`` ``(N, *shape)`` (graph inputs)."""
        n = x.shape[0]
        if self.layout == NCHW:
            return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if self.layout == PLAIN:
            return np.ascontiguousarray(x).reshape(n, *self.cshape)
        raise ValueError(f"an input cannot have layout {self.layout}")


def normalized(act: Act) -> Act:
    """``act`` as PLAIN where its layout does not change the order of the values: an HWC_FLAT
    of a map with one channel or one pixel."""
    if act.layout == HWC_FLAT and (act.hwc[2] == 1 or act.hwc[0] * act.hwc[1] == 1):
        return replace(act, layout=PLAIN, hwc=None)
    return act


def plain_order(act: Act) -> bool:
    """Whether convnet holds ``act``'s values in ONNX's row-major order (PLAIN, or an NCHW map with
    one channel or one pixel)."""
    if act.layout == PLAIN:
        return True
    if act.layout == NCHW:
        c, h, w = act.shape
        return c == 1 or h * w == 1
    return False


def as_plain(act: Act) -> Act | None:
    """``act`` in layout PLAIN when its values are in ONNX order (:func:`plain_order`), else None."""
    if act.layout == PLAIN:
        return act
    if plain_order(act):
        return replace(act, layout=PLAIN, hwc=None)
    return None


def nchw_to_nhwc(shape) -> tuple[int, ...]:
    c, h, w = shape
    return (h, w, c)


def chw_rows_to_hwc(w: np.ndarray, hwc) -> np.ndarray:
    """FC weights ``(C·H·W, K)`` whose rows follow ONNX's NCHW flatten, reordered for convnet's NHWC
    flatten: row ``(c, h, w)`` moves to ``(h, w, c)``."""
    h, wd, c = hwc
    k = w.shape[1]
    return np.ascontiguousarray(w.reshape(c, h, wd, k).transpose(1, 2, 0, 3).reshape(h * wd * c, k))
