"""What one layer costs, from its hyperparameters and input shape alone.

Nothing here allocates a parameter: the numbers come from shapes, so the
summary of VGG16 at 224×224×3 needs no 550 MB of weights.  All counts are
**per sample** (the summary multiplies by the batch).

Counting rules (``n`` = output elements per sample, ``Ho·Wo·K``):

============  ==========================  ===================  ===================================
layer         weights / biases            macs                 FLOPs forward / backward
============  ==========================  ===================  ===================================
CONV          kh·kw·(C/g)·K / K           Ho·Wo·K·kh·kw·C/g    2·macs (+ n bias adds) / 4·macs (+ n)
FC            D·U / U                     D·U                  2·macs (+ U) / 4·macs (+ U)
LOCAL         Ho·Wo·kh·kw·C·K / Ho·Wo·K   Ho·Wo·K·kh·kw·C      as CONV
BN            C (γ) / C (β)               0                    7·n / 9·n
LRN           0                           0                    (size + 4)·n / 2·(size + 4)·n
MAXPOOL       0                           0                    (kh·kw − 1)·n / n
AVG/L2POOL    0                           0                    kh·kw·n / kh·kw·n
GAP           0                           0                    H·W·C / H·W·C
RELU          0                           0                    n / n
DROPOUT       0                           0                    2·n / n
ADD (k in)    0                           0                    (k − 1)·n / 0
============  ==========================  ===================  ===================================

A multiply-add (MAC) is one multiplication and one addition; FLOPs count each
separately, hence ``2·macs``.  Backward of a CONV/FC is two GEMMs the size of
the forward one (``dx`` and ``dw``), hence ``4·macs``.

``window`` describes the layer for receptive-field arithmetic: a sliding
window ``(kernel, stride, dilation)`` per axis, ``"global"`` for layers that
see the whole input (FC, global pooling), or None for layers that do not
change the spatial geometry (RELU, BN, ...).
"""
from __future__ import annotations

import math
from collections.abc import Callable
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
    """Per-sample cost of one layer (see the module docstring for the rules)."""

    weights: int = 0
    biases: int = 0
    macs: int = 0
    flops_forward: int = 0
    flops_backward: int = 0
    window: Window | str | None = None

    @property
    def params(self) -> int:
        return self.weights + self.biases


def _prod(shape) -> int:
    return int(math.prod(shape))


def _conv(layer, ins, out) -> LayerCost:
    c, (ho, wo, k) = ins[0][2], out
    kh, kw = layer.kernel_size
    cg = c // layer.groups
    macs = ho * wo * k * kh * kw * cg
    n = ho * wo * k
    bias = k if layer.use_bias else 0
    return LayerCost(kh * kw * cg * k, bias, macs, 2 * macs + (n if bias else 0), 4 * macs + (n if bias else 0),
                     Window((kh, kw), tuple(layer.stride), tuple(layer.dilation)))


def _local(layer, ins, out) -> LayerCost:
    c, (ho, wo, k) = ins[0][2], out
    kh, kw = layer.kernel_size
    macs = ho * wo * k * kh * kw * c
    n = ho * wo * k
    bias = n if layer.use_bias else 0
    return LayerCost(ho * wo * kh * kw * c * k, bias, macs, 2 * macs + bias, 4 * macs + bias,
                     Window((kh, kw), tuple(layer.stride), tuple(layer.dilation)))


def _dense(layer, ins, out) -> LayerCost:
    d, u = _prod(ins[0]), layer.units
    macs = d * u
    bias = u if layer.use_bias else 0
    return LayerCost(d * u, bias, macs, 2 * macs + bias, 4 * macs + bias, GLOBAL if len(ins[0]) == 3 else None)


def _batchnorm(layer, ins, out) -> LayerCost:
    c, n = ins[0][-1], _prod(out)
    return LayerCost(c, c, 0, 7 * n, 9 * n)


def _lrn(layer, ins, out) -> LayerCost:
    n = _prod(out)
    f = (layer.size + 4) * n
    return LayerCost(0, 0, 0, f, 2 * f)


def _maxpool(layer, ins, out) -> LayerCost:
    kh, kw = layer.pool_size
    n = _prod(out)
    return LayerCost(0, 0, 0, (kh * kw - 1) * n, n, Window((kh, kw), tuple(layer.stride)))


def _avgpool(layer, ins, out) -> LayerCost:
    kh, kw = layer.pool_size
    n = _prod(out)
    return LayerCost(0, 0, 0, kh * kw * n, kh * kw * n, Window((kh, kw), tuple(layer.stride)))


def _fracpool(layer, ins, out) -> LayerCost:
    (h, w, _), (ho, wo, _) = ins[0], out
    kh, kw = layer.pool_size
    n = _prod(out)
    # regions of about kh x kw moved by about H/Ho: round the stride for the receptive field
    stride = (max(1, round(h / ho)), max(1, round(w / wo)))
    return LayerCost(0, 0, 0, (kh * kw - 1) * n, n, Window((kh, kw), stride))


def _gap(layer, ins, out) -> LayerCost:
    n = _prod(ins[0])
    return LayerCost(0, 0, 0, n, n, GLOBAL)


def _elementwise(fwd: int, bwd: int) -> Callable:
    def cost(layer, ins, out) -> LayerCost:
        n = _prod(out)
        return LayerCost(0, 0, 0, fwd * n, bwd * n)

    return cost


def _add(layer, ins, out) -> LayerCost:
    return LayerCost(0, 0, 0, (len(ins) - 1) * _prod(out), 0)


_RULES: dict[str, Callable] = {
    "Conv2D": _conv,
    "LocallyConnected2D": _local,
    "Dense": _dense,
    "BatchNorm": _batchnorm,
    "LRN": _lrn,
    "MaxPool2D": _maxpool,
    "AvgPool2D": _avgpool,
    "L2Pool2D": _avgpool,
    "FractionalMaxPool2D": _fracpool,
    "GlobalAvgPool": _gap,
    "ReLU": _elementwise(1, 1),
    "Dropout": _elementwise(2, 1),
    "Flatten": _elementwise(0, 0),
    "Add": _add,
    "Concat": _elementwise(0, 0),
}


def _built_params(layer) -> tuple[int, int]:
    weights = biases = 0
    for key, p in layer.params.items():
        if key in ("b", "beta", "bias"):
            biases += int(p.size)
        else:
            weights += int(p.size)
    return weights, biases


def layer_cost(layer, input_shapes, output_shape) -> LayerCost:
    """The :class:`LayerCost` of ``layer`` for per-sample ``input_shapes`` (a list) and ``output_shape``.

    Known layer types (and their subclasses) are costed from shapes; a layer of
    another type counts the parameters it holds if built (else none) and no
    arithmetic — a layer can declare its own rule with a ``cost(input_shapes,
    output_shape) -> LayerCost`` method.
    """
    ins = [tuple(s) for s in input_shapes]
    out = tuple(output_shape)
    own = getattr(layer, "cost", None)
    if callable(own):
        return own(ins, out)
    for cls in type(layer).__mro__:
        rule = _RULES.get(cls.__name__)
        if rule is not None:
            return rule(layer, ins, out)
    w, b = _built_params(layer) if layer.params else (0, 0)
    return LayerCost(w, b)
