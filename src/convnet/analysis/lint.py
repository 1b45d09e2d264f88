"""Sizing lint: the notes' rules of thumb, checked against a net.

:func:`lint` returns a list of :class:`SizingWarning` (and, with
``warn=True``, also issues each through Python's :mod:`warnings` as a
:class:`SizingWarningCategory`).  The rules ("Layer Sizing Patterns" in the
notes):

``input-divisibility``
    The input should be divisible by 2 many times (32, 64, 96, 224, 384, 512):
    warned when the input side has fewer factors of 2 than the net's downsampling
    has — the jump (effective stride) from the input to its last spatial map, along
    the main path, as :mod:`~convnet.analysis.receptive` computes it (a shortcut's
    stride, which runs beside the main path, is not multiplied in).  The warning
    names the nearest sizes divisible that often *at which the net runs* (its
    shapes are computed there); when there is none — AlexNet's 227, which its
    11×11/4 unpadded conv1 needs (it tiles only at 4n + 3) — the input is what the
    net needs, and nothing is said.
``conv-padding``
    A stride-1 CONV should zero-pad by ``P = (F - 1) / 2`` so that it keeps the
    spatial size; warned when its output is smaller (or larger) than its input —
    except for a window that covers its whole unpadded input (a 1×1 output): that
    is an FC layer written as a CONV (the notes' FC→CONV conversion), not a
    shrinking one.
``pool-size``
    Pooling windows larger than 3 are "too lossy and aggressive".
``uneven-geometry``
    ``(W - F + 2P)`` should be divisible by ``S`` so that the neurons fit and no
    input is ignored; warned when a layer that floors (``fit="crop"``, ``/FLOOR``)
    leaves rows or columns *of the input* unread — more than its zero padding at
    that end, and more than the ``S - F`` rows that any window narrower than its
    stride skips between windows.  Flooring away only padding (ResNet's 7×7/2 P3
    stem on 224, its 3×3/2 P1 layers, a 1×1/2 projection's last odd row) and
    rounding up (``fit="pad"``, Caffe's and GoogLeNet's ceil-mode pooling: one more
    window, every input row read) lose nothing and are not warned.

None of these is an error; a warning is a rule of thumb the net breaks, stated
only where it holds: LeNet-5's unpadded 5×5 convolutions do shrink their maps.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

from ..errors import ConvNetError
from ..graph import INPUT
from ..layers import Conv2D, LocallyConnected2D
from .receptive import receptive_fields


class SizingWarningCategory(UserWarning):
    """The warnings category of sizing-lint findings."""


@dataclass(frozen=True)
class SizingWarning:
    rule: str
    layer: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.layer}: {self.message}"


def _twos(n: int) -> int:
    k = 0
    while n > 0 and n % 2 == 0:
        n //= 2
        k += 1
    return k


def _unread(axis, fit: str) -> int:
    """Rows of real input along ``axis`` that no window reads because the layer floors, beyond
    those a window narrower than the stride skips anyway (0 when it fits, pads or drops padding)."""
    extra = getattr(axis, "fit_extra", 0) or 0
    rem = (axis.size + axis.pad_before + axis.pad_after - extra - axis.effective_kernel) % axis.stride
    if not rem or fit == "pad" or extra:
        return 0
    gap = max(0, axis.stride - axis.effective_kernel)  # what every stride skips between windows
    lost = rem - axis.pad_after  # the unread rows at the end, less the zero rows among them
    # lost > gap is exactly when rounding up would read a real row that flooring leaves out (the
    # extra window would start inside the input): tests/analysis/test_lint.py checks it against windows
    return lost if lost > gap else 0


def _nearest_multiples(n: int, m: int, count: int) -> list[int]:
    """The ``count`` positive multiples of ``m`` nearest to ``n`` (ties: the larger first)."""
    low = max(m, n // m * m)
    out = sorted({low + k * m for k in range(-count, count + 1) if low + k * m >= m},
                 key=lambda c: (abs(c - n), -c))
    return out[:count]


def _runnable_sizes(net, shape, mh: int, mw: int, *, tries: int = 4) -> list[tuple[int, int]]:
    """Up to two (height, width), each a multiple of ``mh``/``mw`` and near ``shape``, at which the
    net's shapes can be computed (its geometry tiles): the only sizes worth recommending."""
    h, w, c = shape
    hs, ws = _nearest_multiples(h, mh, tries), _nearest_multiples(w, mw, tries)
    pairs = [(a, a) for a in hs] if (h, mh) == (w, mw) else sorted(
        ((a, b) for a in hs for b in ws), key=lambda p: abs(p[0] - h) + abs(p[1] - w))
    found = []
    for a, b in pairs:
        try:
            net.shapes((a, b, c))
        except ConvNetError:
            continue
        found.append((a, b))
        if len(found) == 2:
            break
    return found


def lint(net, input_shape=None, *, warn: bool = False) -> list[SizingWarning]:
    """Check ``net`` on ``input_shape`` against the sizing rules; see the module docstring."""
    shapes = net.shapes(input_shape)
    found: list[SizingWarning] = []
    for node in net.nodes:
        layer = node.layer
        ins = shapes[node.inputs[0]]
        geometry = getattr(layer, "geometry", None)
        if not callable(geometry) or len(ins) != 3:
            continue
        geom = geometry(ins)
        is_conv = isinstance(layer, (Conv2D, LocallyConnected2D))
        kh, kw = geom.kernel
        sh, sw = geom.stride
        whole = geom.out_hw == (1, 1) and not geom.has_padding and (kh, kw) == tuple(ins[:2])
        if is_conv and (sh, sw) == (1, 1) and geom.out_hw != tuple(ins[:2]) and not whole:
            (pt, pb), (pl, pr) = geom.pads
            found.append(SizingWarning(
                "conv-padding", node.name,
                f"a stride-1 {kh}×{kw} CONV with padding {(pt, pb), (pl, pr)} turns {ins[0]}×{ins[1]} into "
                f"{geom.out_hw[0]}×{geom.out_hw[1]}; P = (F - 1) / 2 = {(kh - 1) / 2:g} keeps the size"
                + ("" if kh % 2 and kw % 2 else " (an even F cannot keep it with symmetric padding)") + ".",
            ))
        if not is_conv and max(kh, kw) > 3:
            found.append(SizingWarning(
                "pool-size", node.name,
                f"a {kh}×{kw} pooling window is larger than 3, which the notes call too lossy; use 2×2/2 or 3×3/2.",
            ))
        fit = getattr(layer, "fit", "error")
        for axis, rows in ((geom.height, "row"), (geom.width, "column")):
            lost = _unread(axis, fit)
            if lost:
                padding = axis.pad_before + axis.pad_after
                found.append(SizingWarning(
                    "uneven-geometry", node.name,
                    f"({axis.size} - {axis.effective_kernel} + {padding}) is not divisible by the stride "
                    f"{axis.stride}, and the layer floors: the last {lost} {rows}(s) of its {ins[0]}×{ins[1]} "
                    f"input are never read; change the padding or the input size, or round up with "
                    + ("/CEIL." if getattr(layer, "pattern_text", None) else "fit='pad'."),
                ))
                break
    if len(shapes[INPUT]) == 3:
        found[:0] = _input_divisibility(net, shapes, receptive_fields(net, shapes[INPUT]))
    if warn:
        for f in found:
            warnings.warn(str(f), SizingWarningCategory, stacklevel=2)
    return found


def _input_divisibility(net, shapes, fields) -> list[SizingWarning]:
    # the downsampling of the main path: the jump at the last spatial map (a global pooling or an
    # FC, whose "jump" is the size of its input, does not downsample in the notes' sense)
    jumps = [fields[n.name].jump for n in net.nodes if len(shapes[n.name]) == 3] or [(1, 1)]
    jh, jw = max(j[0] for j in jumps), max(j[1] for j in jumps)
    h, w, _ = shapes[INPUT]
    need_h, need_w = _twos(jh), _twos(jw)
    twos = min(_twos(h), _twos(w))
    if _twos(h) >= need_h and _twos(w) >= need_w:
        return []
    sizes = _runnable_sizes(net, shapes[INPUT], 2 ** need_h, 2 ** need_w)
    if not sizes:
        return []  # no such size lets the net run: the input is what its geometry needs
    total = jh if jh == jw else f"{jh}×{jw}"
    names = " or ".join(f"{a}×{b}" for a, b in sizes)
    verb = "divides evenly, and the net runs at it" if len(sizes) == 1 else "divide evenly, and the net runs at both"
    return [SizingWarning(
        "input-divisibility", INPUT,
        f"the input {h}×{w} is divisible by 2 only {twos} time(s), but the net halves it {max(need_h, need_w)} "
        f"time(s) (total downsampling {total}); {names} {verb}.",
    )]
