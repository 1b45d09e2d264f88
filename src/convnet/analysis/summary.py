"""The layer-by-layer table of the notes' VGGNet walk-through, for any net.

``convnet.summary(net, input_shape, batch=1)`` (:func:`summarize`) returns a
:class:`Summary`: one :class:`Row` for the input and one per layer, with

* ``name``, ``type`` (the layer's kind: CONV, MAXPOOL, FC, RELU, ...) and
  ``inputs`` (the nodes it reads; the text table of a branched net shows them
  where they are not simply the row above);
* ``output_shape`` as H×W×D (a vector of D values is written 1×1×D, as in the
  notes), and ``shape``, the raw per-sample shape;
* ``activations``: output values for the whole batch, and their ``activation_bytes``;
* ``storage``: how :meth:`~convnet.net.Net.predict` holds that output — ``"new"`` (an
  array of its own), ``"in place"`` (a ReLU or ADD writing into its input), ``"view"``
  (FLATTEN, DROPOUT at inference: the input itself), ``"folded"`` (a BN run inside the CONV
  before it, with prepacking on) or ``"fused"`` (a ReLU run by the BN before it, in a net that
  writes nothing in place) — and so ``stored`` /
  ``stored_bytes``: the values and bytes the row adds to memory (0 unless ``"new"``);
* ``weights``, ``biases`` and ``params = weights + biases`` (trainable values;
  BatchNorm's γ counts as weights and β as biases; running statistics do not count);
* ``macs`` (multiply-adds), ``flops_forward`` and ``flops_backward`` for the
  batch (each layer's ``cost``; see :mod:`convnet.analysis.costs`);
* ``receptive_field`` and ``jump`` (effective stride), (height, width), in
  input pixels (:mod:`convnet.analysis.receptive`).

Every total is the sum of its column.  The tables (text, Markdown) show in the
activations and memory columns what each row *stores* — an in-place or view row
says so instead of a number — and total those: ``total_stored`` (VGG16: 15,237,608
values per image, the input included), not ``total_activations`` (every row's
output counted, in-place RELU rows too: 28.8M for VGG16, which no forward pass
holds).  Nothing is allocated: the summary of VGG16 comes from shapes alone.
Render with :meth:`Summary.to_text` (terminal), :meth:`~Summary.to_markdown`,
:meth:`~Summary.to_json` and :meth:`~Summary.to_csv`.

Note on the notes' VGG16 table: its rows are reproduced exactly (CONV, POOL
and FC rows; the RELU and DROPOUT rows here store nothing: in place, and a
view at inference), but its "TOTAL memory: 24M" is an arithmetic slip — the
rows sum to 15,237,608 values (≈ 58 MiB per image in float32), the table's total here.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from ..backend import resolve_dtype
from ..errors import ConfigError
from ..graph import INPUT
from .costs import layer_cost
from .memory import format_bytes, output_storage
from .receptive import receptive_fields
from .tables import csv_table, grouped, human, markdown_table, text_table


@dataclass(frozen=True)
class Row:
    """One line of the summary (counts are for the whole batch; see the module docstring)."""

    name: str
    type: str
    shape: tuple[int, ...]
    activations: int
    activation_bytes: int
    weights: int
    biases: int
    macs: int
    flops_forward: int
    flops_backward: int
    receptive_field: tuple[int, int]
    jump: tuple[int, int]
    inputs: tuple[str, ...] = field(default=())
    #: "new", "in place" or "view" (see the module docstring)
    storage: str = "new"

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def stored(self) -> int:
        """Values this row adds to memory: its activations, or 0 when written in place or a view."""
        return self.activations if self.storage == "new" else 0

    @property
    def stored_bytes(self) -> int:
        return self.activation_bytes if self.storage == "new" else 0

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``; a vector ``(D,)`` is ``(1, 1, D)``."""
        if len(self.shape) == 3:
            return tuple(self.shape)
        return (1, 1, int(math.prod(self.shape)))

    @property
    def shape_text(self) -> str:
        return "×".join(str(d) for d in self.output_shape)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["output_shape"] = list(self.output_shape)
        d["params"] = self.params
        d["stored"], d["stored_bytes"] = self.stored, self.stored_bytes
        d["receptive_field"] = list(self.receptive_field)
        d["jump"] = list(self.jump)
        d["inputs"] = list(self.inputs)
        return d


_COLUMNS = ["name", "type", "output_shape", "activations", "activation_bytes", "storage", "stored", "stored_bytes",
            "weights", "biases", "params", "macs", "flops_forward", "flops_backward", "receptive_field", "jump",
            "inputs"]
_TOTALS = ["activations", "activation_bytes", "stored", "stored_bytes", "weights", "biases", "params", "macs",
           "flops_forward", "flops_backward"]


class Summary:
    """Rows and their totals; see the module docstring."""

    def __init__(self, rows: list[Row], *, name: str | None, input_shape, batch: int, dtype: str):
        self.rows = list(rows)
        self.name = name
        self.input_shape = tuple(input_shape)
        self.batch = batch
        self.dtype = dtype

    # -- totals (each the sum of its column) ------------------------------------------------
    def total(self, column: str) -> int:
        return int(sum(getattr(r, column) for r in self.rows))

    @property
    def total_params(self) -> int:
        return self.total("params")

    @property
    def total_weights(self) -> int:
        return self.total("weights")

    @property
    def total_biases(self) -> int:
        return self.total("biases")

    @property
    def total_activations(self) -> int:
        return self.total("activations")

    @property
    def total_activation_bytes(self) -> int:
        return self.total("activation_bytes")

    @property
    def total_stored(self) -> int:
        """Values the forward pass stores, each array once (the tables' total; see the module docstring)."""
        return self.total("stored")

    @property
    def total_stored_bytes(self) -> int:
        return self.total("stored_bytes")

    @property
    def total_macs(self) -> int:
        return self.total("macs")

    @property
    def total_flops_forward(self) -> int:
        return self.total("flops_forward")

    @property
    def total_flops_backward(self) -> int:
        return self.total("flops_backward")

    def __getitem__(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row named {name!r} in the summary")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    # -- renderings ----------------------------------------------------------------------------
    def as_dict(self) -> dict:
        d = {"name": self.name, "input_shape": list(self.input_shape), "batch": self.batch, "dtype": self.dtype,
             "layers": [r.as_dict() for r in self.rows]}
        for col in _TOTALS:
            d[f"total_{col}"] = self.total(col)
        return d

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.as_dict(), indent=indent)

    def to_csv(self) -> str:
        rows = []
        for r in self.rows:
            d = r.as_dict()
            rows.append([("x".join(map(str, d[c])) if c in ("output_shape", "receptive_field", "jump")
                          else " ".join(d[c]) if c == "inputs" else d[c]) for c in _COLUMNS])
        return csv_table(_COLUMNS, rows)

    def _cells(self, *, exact: bool):
        branched = any(len(r.inputs) > 1 or (r.inputs and r.inputs[0] != prev.name)
                       for prev, r in zip(self.rows, self.rows[1:]))
        headers = ["name", "type", "output", "activations", "memory", "weights", "biases", "params", "MACs",
                   "FLOPs fwd", "FLOPs bwd", "RF", "jump"] + (["inputs"] if branched else [])
        count = grouped if exact else human

        def rf(p):
            return f"{p[0]}×{p[1]}" if p[0] != p[1] else str(p[0])

        rows = []
        for prev, r in zip([None] + self.rows, self.rows):
            # a row that stores nothing: its word in Markdown; "-" in the terminal table, whose
            # numeric columns align only around numbers and "-" (the legend below says why)
            mark = r.storage if exact else "-"
            stored = r.storage == "new"
            cells = [r.name, r.type, r.shape_text, count(r.stored) if stored else mark,
                     _mem(r.stored_bytes) if stored else ("0 B" if exact else "-"),
                     grouped(r.weights), grouped(r.biases), grouped(r.params), human(r.macs),
                     human(r.flops_forward), human(r.flops_backward), rf(r.receptive_field), rf(r.jump)]
            if branched:
                cells.append("" if prev is not None and r.inputs == (prev.name,) else _names(r.inputs))
            rows.append(cells)
        footer = ["total", "", "", count(self.total_stored), _mem(self.total_stored_bytes),
                  grouped(self.total_weights), grouped(self.total_biases), grouped(self.total_params),
                  human(self.total_macs), human(self.total_flops_forward), human(self.total_flops_backward), "", ""]
        if branched:
            footer.append("")
        return headers, rows, footer

    def title(self) -> str:
        shape = "×".join(map(str, self.input_shape))
        return f"{self.name or 'net'}: input {shape}, batch {self.batch}, {self.dtype}"

    def _legend(self, mark: str) -> str:
        """What the rows that store nothing are, for those present (the tables total what is stored)."""
        kinds = [k for k in ("in place", "view", "folded", "fused") if any(r.storage == k for r in self.rows)]
        if not kinds:
            return ""
        what = {"in place": "RELU/ADD written into its input", "view": "FLATTEN, or DROPOUT at inference: a view",
                "folded": "BN folded into the CONV before it at inference", "fused": "RELU run by the BN before it"}
        marks = [f"'{k}'" for k in kinds] if mark == "" else [f"'{mark}'"]
        return (f"{' and '.join(marks)}: the row stores nothing ({'; '.join(what[k] for k in kinds)}); "
                "the totals count what is stored.")

    def to_text(self) -> str:
        headers, rows, footer = self._cells(exact=False)
        legend = self._legend("-")
        return text_table(headers, rows, footer=footer, title=self.title()) + (f"\n{legend}" if legend else "")

    def to_markdown(self) -> str:
        headers, rows, footer = self._cells(exact=True)
        legend = self._legend("")
        return f"**{self.title()}**\n\n" + markdown_table(headers, rows, footer=footer) + (
            f"\n\n{legend}" if legend else "")

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<Summary {self.title()}: {len(self.rows)} rows, {self.total_params:,} params>"


def _names(names) -> str:
    """``a/x, a/y`` -> ``a/{x, y}``: a branch's inputs in little space (blank: the row above)."""
    if len(names) < 2:
        return ", ".join(names)
    prefix = names[0][: names[0].rfind("/") + 1] or names[0][: names[0].rfind(".") + 1]
    if prefix and all(n.startswith(prefix) for n in names):
        return prefix + "{" + ", ".join(n[len(prefix):] for n in names) + "}"
    return ", ".join(names)


def _mem(nbytes: int) -> str:
    return format_bytes(nbytes)


def summarize(net, input_shape=None, *, batch: int = 1, dtype=None) -> Summary:
    """Build the :class:`Summary` of ``net`` for a per-sample ``input_shape`` and a batch size
    (``convnet.summary``)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"Argument `batch` must be a positive integer; received {batch!r}.")
    if dtype is None:
        dtype = net.layers[0].dtype if len(net) else None
    dt = resolve_dtype(dtype)
    shapes = net.shapes(input_shape)
    fields = receptive_fields(net, shapes[INPUT])
    storage = output_storage(net, shapes)
    n_in = math.prod(shapes[INPUT])
    rows = [Row(INPUT, "INPUT", shapes[INPUT], batch * n_in, batch * n_in * dt.itemsize, 0, 0, 0, 0, 0, (1, 1),
                (1, 1))]
    for node in net.nodes:
        out = shapes[node.name]
        cost = layer_cost(node.layer, [shapes[i] for i in node.inputs], out)
        count = batch * math.prod(out)
        f = fields[node.name]
        rows.append(Row(
            name=node.name,
            type=str(node.layer.kind),
            shape=out,
            activations=count,
            activation_bytes=count * dt.itemsize,
            weights=cost.weights,
            biases=cost.biases,
            macs=batch * cost.macs,
            flops_forward=batch * cost.flops_forward,
            flops_backward=batch * cost.flops_backward,
            receptive_field=f.size,
            jump=f.jump,
            inputs=node.inputs,
            storage=storage[node.name],
        ))
    return Summary(rows, name=net.name, input_shape=shapes[INPUT], batch=batch, dtype=str(dt))
