"""Sizing lint: the notes' rules of thumb, checked against a net.

:func:`lint` returns a list of :class:`SizingWarning` (and, with
``warn=True``, also issues each through Python's :mod:`warnings` as a
:class:`SizingWarningCategory`).  The rules ("Layer Sizing Patterns" in the
notes):

``input-divisibility``
    The input should be divisible by 2 many times (32, 64, 96, 224, 384, 512):
    warned when the input side has fewer factors of 2 than the net's total
    downsampling (the product of its strides) has.
``conv-padding``
    A stride-1 CONV should zero-pad by ``P = (F - 1) / 2`` so that it keeps the
    spatial size; warned when its output is smaller (or larger) than its input.
``pool-size``
    Pooling windows larger than 3 are "too lossy and aggressive".
``uneven-geometry``
    ``(W - F + 2P)`` should be divisible by ``S`` so the neurons fit
    symmetrically; warned when a layer only fits thanks to ``fit="crop"``
    (rows dropped) or ``fit="pad"`` (rows added).

None of these is an error: AlexNet's 227 input, ResNet's floored 7×7/2 and
GoogLeNet's ceil-mode pooling break them on purpose.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass


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


def lint(net, input_shape=None, *, warn: bool = False) -> list[SizingWarning]:
    """Check ``net`` on ``input_shape`` against the sizing rules; see the module docstring."""
    from ..net import INPUT

    shapes = net.shapes(input_shape)
    found: list[SizingWarning] = []
    jump = 1
    for node in net.nodes:
        layer = node.layer
        ins = shapes[node.inputs[0]]
        geometry = getattr(layer, "geometry", None)
        if not callable(geometry) or len(ins) != 3:
            continue
        geom = geometry(ins)
        kind = str(getattr(layer, "kind", "")).upper()
        is_conv = type(layer).__name__ in ("Conv2D", "LocallyConnected2D") or kind == "CONV"
        kh, kw = geom.kernel
        sh, sw = geom.stride
        jump *= max(sh, sw)
        if is_conv and (sh, sw) == (1, 1) and geom.out_hw != tuple(ins[:2]):
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
        for axis in (geom.height, geom.width):
            extra = getattr(axis, "fit_extra", None)
            rem = (axis.size + axis.pad_before + axis.pad_after - (extra or 0) - axis.effective_kernel) % axis.stride
            if rem:
                how = "drops" if getattr(layer, "fit", "error") == "crop" else "pads"
                found.append(SizingWarning(
                    "uneven-geometry", node.name,
                    f"({axis.size} - {axis.effective_kernel} + {axis.pad_before + axis.pad_after - (extra or 0)}) is not "
                    f"divisible by the stride {axis.stride}; the layer {how} {rem if how == 'drops' else axis.stride - rem} "
                    "row(s)/column(s) to make it fit.",
                ))
                break
    h, w = shapes[INPUT][:2] if len(shapes[INPUT]) == 3 else (None, None)
    halvings = _twos(jump)
    if h is not None and halvings:
        twos = min(_twos(h), _twos(w))
        if twos < halvings:
            found.insert(0, SizingWarning(
                "input-divisibility", INPUT,
                f"the input {h}×{w} is divisible by 2 only {twos} time(s), but the net halves it {halvings} "
                f"time(s) (total downsampling {jump}); sizes such as 32, 64, 96, 224, 384 or 512 divide evenly.",
            ))
    if warn:
        for f in found:
            warnings.warn(str(f), SizingWarningCategory, stacklevel=2)
    return found
