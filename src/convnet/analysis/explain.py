"""Which convolution algorithm each layer runs, and what it costs: ``net.explain(batch=N)``.

One :class:`Choice` per CONV layer (other layers have no choice to explain), for a
forward pass over a batch of ``N``, read from the layer's plan (:func:`convnet.ops.fast.conv_plan`,
the one the op runs):

* ``algorithm`` — what :func:`convnet.ops.fast.choose_algorithm` picks for this shape
  (or the layer's own ``algorithm=``): ``gemm1x1``, ``im2col``, ``direct``,
  ``smallmap``, ``winograd2`` or ``winograd4``;
* ``source`` (the ``by`` column) — who chose it: the cost model (``model``), a timing on this
  machine (``tuned``: ``convnet tune``, :mod:`convnet.ops.fast.tuning`) or the layer (``layer``);
* ``multiplies`` — scalar multiplications the algorithm performs, transforms included:

  ======================  =====================================================================
  gemm1x1                 ``N·Ho·Wo·C·K``
  im2col, direct          ``N·Ho·Wo·kh·kw·(C/groups)·K`` (every tap of every window)
  smallmap                ``N·(taps inside the image, over all windows)·C·K``
  winograd F(m×m, 3×3)    ``α²·T·C·K`` (the α² GEMMs, T tiles of m×m, α = m + 2)
                          + the filter, input and output transforms: ``3·α·(3+α)·C·K +
                          6·α·(m+α)·T·C + 6·m·(α+m)·T·K`` compiled (separable, six terms a
                          tile sum), ``9·α²·C·K + α⁴·T·C + m²·α²·T·K`` as NumPy's Kronecker GEMMs
                          (:func:`convnet.ops.fast.winograd.multiplies`)
  ======================  =====================================================================

* ``direct_multiplies`` — the im2col count, for comparison (``ratio`` = multiplies / it);
* ``workspace_bytes`` — scratch memory beyond input and output (the plan's ``forward``
  workspace, which the memory model counts too): the padded input, plus one block of
  im2col columns (grouped: plus the per-group copies of the batched GEMM); or Winograd's
  transformed input and product for one block of tiles (with NumPy: its padded input,
  tiles, transformed input and product for one batch chunk) — both bounded by the layer's ``workspace_bytes`` — plus Winograd's
  transformed filter ``α²·C·K`` (not bounded: the weights' size times α²/9); smallmap: its
  pixel-major output and one GEMM's product (not bounded: an output-sized buffer, and the
  maps it runs on are tiny).

``convnet summary MODEL --explain`` prints the same table.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ..backend import resolve_dtype
from ..errors import ConfigError
from ..layers.conv import Conv2D
from ..ops.fast import conv_plan
from .memory import format_bytes
from .tables import csv_table, human, markdown_table, text_table


@dataclass(frozen=True)
class Choice:
    name: str
    input_shape: tuple
    output_shape: tuple
    kernel: tuple
    stride: tuple
    groups: int
    algorithm: str
    multiplies: int
    direct_multiplies: int
    workspace_bytes: int
    #: who chose the algorithm: "cost model", "tuned" (timed on this machine: ``convnet tune``) or
    #: "requested" (the layer's ``algorithm=``) — the plan's ``source``
    source: str = "cost model"

    @property
    def ratio(self) -> float:
        return self.multiplies / self.direct_multiplies if self.direct_multiplies else 1.0


def layer_choice(name, layer, in_shape, out_shape, batch: int, dtype) -> Choice:
    """The :class:`Choice` of one Conv2D layer for a batch of ``batch``: what its plan
    (:func:`convnet.ops.fast.conv_plan`) says."""
    kh, kw = layer.kernel_size
    c, k = in_shape[2], out_shape[2]
    plan = conv_plan((batch, *in_shape), (kh, kw, c // layer.groups, k), dtype, stride=layer.stride,
                     padding=layer.padding, dilation=layer.dilation, groups=layer.groups, fit=layer.fit,
                     algorithm=layer.algorithm, workspace_bytes=layer.workspace_bytes, layer=layer.label)
    return Choice(name, tuple(in_shape), tuple(out_shape), (kh, kw), tuple(layer.stride), layer.groups,
                  plan.algorithm, plan.multiplies, plan.im2col_multiplies, plan.forward.total, plan.source)


@dataclass
class Explanation:
    """The per-layer :class:`Choice` list of a net for one batch size, with renderers."""

    net_name: str
    batch: int
    dtype: str
    choices: list

    HEADERS = ["layer", "in", "out", "kernel/stride", "algorithm", "by", "multiplies", "x im2col", "workspace"]
    #: the "by" column: who chose the algorithm
    SOURCES = {"cost model": "model", "tuned": "tuned", "requested": "layer"}

    @property
    def total_multiplies(self) -> int:
        return sum(c.multiplies for c in self.choices)

    @property
    def total_direct_multiplies(self) -> int:
        return sum(c.direct_multiplies for c in self.choices)

    def _rows(self) -> list[list[str]]:
        def shape(s):
            return "×".join(str(d) for d in s)

        return [[c.name, shape(c.input_shape), shape(c.output_shape),
                 f"{c.kernel[0]}×{c.kernel[1]}/{c.stride[0]}" + (f" g{c.groups}" if c.groups > 1 else ""),
                 c.algorithm, self.SOURCES.get(c.source, c.source), human(c.multiplies), f"{c.ratio:.2f}",
                 format_bytes(c.workspace_bytes)]
                for c in self.choices]

    def _footer(self) -> list[str]:
        total, direct = self.total_multiplies, self.total_direct_multiplies
        return ["total", "", "", "", "", "", human(total), f"{total / direct:.2f}" if direct else "-", ""]

    def to_text(self) -> str:
        title = f"Convolution algorithms of {self.net_name or 'the net'} (batch {self.batch}, {self.dtype}, forward)"
        return text_table(self.HEADERS, self._rows(), footer=self._footer(), title=title)

    def to_markdown(self) -> str:
        return markdown_table(self.HEADERS, self._rows(), footer=self._footer())

    def as_dict(self) -> dict:
        return {"net": self.net_name, "batch": self.batch, "dtype": self.dtype,
                "total_multiplies": self.total_multiplies, "total_im2col_multiplies": self.total_direct_multiplies,
                "layers": [dict(asdict(c), ratio=c.ratio) for c in self.choices]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def to_csv(self) -> str:
        keys = ["name", "algorithm", "multiplies", "direct_multiplies", "workspace_bytes", "input_shape",
                "output_shape", "kernel", "stride", "groups",
                "source"]
        rows = [[json.dumps(v) if isinstance(v, tuple) else v for v in (getattr(c, k) for k in keys)]
                for c in self.choices]
        return csv_table(keys, rows)


def explain(net, input_shape=None, *, batch: int = 1, dtype=None) -> Explanation:
    """The algorithm of every CONV layer of ``net`` for a forward pass over ``batch`` samples."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"Argument `batch` must be a positive integer; received {batch!r}.")
    dtype = resolve_dtype(dtype)
    shapes = net.shapes(input_shape)
    choices = []
    for node in net.nodes:
        if isinstance(node.layer, Conv2D):
            choices.append(layer_choice(node.name, node.layer, shapes[node.inputs[0]], shapes[node.name], batch, dtype))
    return Explanation(net.name, batch, dtype.name, choices)


