"""ONNX → convnet: ``load(path) -> Net``, and the walk that builds it.

    >>> net = load("resnet50.onnx")          # doctest: +SKIP
    >>> net.predict(x_nhwc)                  # doctest: +SKIP

How a model becomes a net:

1. :func:`~.reader.read_model` parses and checks the file (protobuf only; see reader.py).
2. The graph input becomes the net's input, **NHWC**: an ONNX ``(N, C, H, W)`` input is fed to
   convnet as ``(N, H, W, C)`` (:meth:`Imported.to_convnet` does it for you).  Only nodes that
   lead to the chosen output are read.
3. Each node, in order, is looked up in the one table :data:`~.table.OPS`: when all its inputs
   are constants it is folded (:mod:`.fold`), else its handler appends convnet layers
   (:mod:`.ops_layers`) or just re-describes the activation (:mod:`.ops_shape`: a Flatten of a
   map is no layer, only a new layout — see :mod:`.values`).  Node names become layer names
   (sanitised: ``[A-Za-z0-9_./-]``, made unique; an unnamed node takes its first output's name).
4. The net is built and the ONNX weights — permuted to convnet's layout (OIHW → HWIO, the
   first FC after a flattened map CHW → HWC rows) — are copied into its parameters.

Anything the table does not know, or an attribute value a handler does not support, is a
:class:`~convnet.errors.ConfigError` naming the file, the node, its op, the attribute and what
is supported — never an approximation.  The net's output is convnet's layout of the graph
output; :meth:`Imported.to_onnx` turns it back (``convert`` returns the :class:`Imported`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError, ConvNetError, DataFormatError
from ...graph import INPUT
from ...net import Net
from .reader import MAX_TENSOR_BYTES, Graph, read_model, require_onnx
from .table import OPS
from .values import NCHW, PLAIN, SPLIT, Act, Const, nchw_to_nhwc

__all__ = ["load", "convert", "Imported", "NodeView", "Builder"]

#: ONNX element types of a graph input → the net's dtype
_INPUT_DTYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64)}


@dataclass
class Imported:
    """A converted model: the net, and how its input and output relate to the ONNX tensors.

    ``input`` / ``output`` describe the graph input and output (:class:`~.values.Act`: ONNX
    per-sample shape and layout); :meth:`to_convnet` and :meth:`to_onnx` move arrays across.
    """

    net: Net
    input_name: str
    input: Act
    output_name: str
    output: Act
    opset: int
    dtype: np.dtype
    #: every ONNX value computed by the net: name -> where it lives (its node) and in what layout
    values: dict


    def to_convnet(self, x):
        """The net's input for the ONNX input ``x``: ``(N, C, H, W)`` → ``(N, H, W, C)``."""
        return self.input.from_onnx(np.asarray(x, dtype=self.dtype))

    def to_onnx(self, y):
        """The ONNX output for the net's output ``y`` (NHWC → NCHW, a flattened map back in CHW order)."""
        return np.ascontiguousarray(self.output.to_onnx(y))

    def run(self, x):
        """``net.predict`` in ONNX's layout: ONNX input in, ONNX output out."""
        return self.to_onnx(self.net.predict(self.to_convnet(x)))


def load(path, *, input_shape=None, output: str | None = None, max_bytes: int = MAX_TENSOR_BYTES) -> Net:
    """The convnet :class:`~convnet.net.Net` of the ONNX model at ``path`` (opsets 6-25), with
    its weights; it takes NHWC input.

    ``input_shape``: the per-sample input shape in convnet's order (``(224, 224, 3)``), needed
    when the model leaves height/width symbolic.  ``output``: the graph output to compute when
    the model has several.  ``max_bytes``: the most bytes one tensor may claim (2 GiB).  Raises
    DataFormatError (a malformed file), SecurityError (external data outside the model's folder)
    or ConfigError (an op or attribute convnet does not import), each naming the file.
    """
    return convert(path, input_shape=input_shape, output=output, max_bytes=max_bytes).net


def convert(model, *, input_shape=None, output: str | None = None, source: str | None = None,
            max_bytes: int = MAX_TENSOR_BYTES) -> Imported:
    """Like :func:`load`, for a path, bytes or an ``onnx.ModelProto``; returns the
    :class:`Imported` (the net and its boundary)."""
    graph = read_model(model, source=source, max_bytes=max_bytes)
    return Builder(graph).convert(input_shape=input_shape, output=output)


def sanitise(name: str) -> str:
    """A node name as a layer name: runs of characters outside ``[A-Za-z0-9_./-]`` become ``_``
    (``/`` stays: convnet's own names use it, ``inception_3a/1x1``); no ``_`` or ``/`` at the ends."""
    return re.sub(r"[^A-Za-z0-9_./\-]+", "_", name).strip("_/")


class NodeView:
    """One ONNX node as a handler sees it: its inputs as values, its attributes as Python values,
    and errors that name the file, the node and its op."""

    def __init__(self, builder: Builder, proto, index: int):
        self.b, self.proto, self.index = builder, proto, index
        self.op = proto.op_type
        self.opset = builder.graph.opset
        self.label = proto.name or (proto.output[0] if len(proto.output) else f"#{index}")
        self.inputs = [builder.values[name] if name else None for name in proto.input]
        self.attrs = _attributes(builder.graph, proto, self)

    # -- errors ---------------------------------------------------------------------------
    def fail(self, message: str, cls=ConfigError) -> ConvNetError:
        return cls(f"{self.b.graph.source}: ONNX node {self.label!r} ({self.op}) {message}.")

    def unsupported(self, attr: str, value, supported) -> ConfigError:
        return self.fail(f"has attribute `{attr}`={value!r}, which convnet does not import; supported: {supported}")

    # -- inputs -----------------------------------------------------------------------------
    def act(self, i: int = 0, what: str = "input") -> Act:
        v = self.inputs[i] if i < len(self.inputs) else None
        if not isinstance(v, Act):
            raise self.fail(f"needs its {what} (input {i}) to be an activation computed from the graph input; "
                            f"it is {'missing' if v is None else 'a constant'}")
        return v

    def const(self, i: int, what: str) -> np.ndarray:
        v = self.inputs[i] if i < len(self.inputs) else None
        if not isinstance(v, Const):
            raise self.fail(f"needs its {what} (input {i}) to be a constant (an initializer or computed from "
                            f"constants); it is {'missing' if v is None else 'an activation'}")
        if v.has_batch:
            raise self.fail(f"has a {what} computed from the batch size, which convnet cannot use")
        return v.value

    def optional_const(self, i: int, what: str) -> np.ndarray | None:
        if i >= len(self.inputs) or self.inputs[i] is None:
            return None
        return self.const(i, what)

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)

    def ints(self, name: str, default, length: int | None = None) -> list[int]:
        value = self.attrs.get(name)
        if value is None:
            return list(default)
        value = [int(v) for v in value]
        if length is not None and len(value) != length:
            raise self.unsupported(name, value, f"{length} values")
        return value


def _attributes(graph: Graph, proto, n: NodeView) -> dict:
    """The node's attributes as Python values (tensors read safely by the reader)."""
    out = {}
    for a in proto.attribute:
        if a.name in out:
            raise n.fail(f"has two attributes named {a.name!r}", DataFormatError)
        t = a.type
        if t == 1:
            out[a.name] = float(a.f)
        elif t == 2:
            out[a.name] = int(a.i)
        elif t == 3:
            out[a.name] = a.s.decode("utf-8", "replace")
        elif t == 4:
            out[a.name] = graph.array(a.t, f"attribute {a.name!r} of node {n.label!r}")
        elif t == 6:
            out[a.name] = [float(v) for v in a.floats]
        elif t == 7:
            out[a.name] = [int(v) for v in a.ints]
        elif t == 8:
            out[a.name] = [s.decode("utf-8", "replace") for s in a.strings]
        elif t == 0:  # the type is required from IR version 2 on
            raise n.fail(f"has attribute `{a.name}` without a type", DataFormatError)
        else:  # graphs, sparse tensors, type protos: no op in the table takes them
            raise n.unsupported(a.name, f"<attribute of type {t}>", "ints, floats, strings and tensors")
    return out


def _check_schema(n: NodeView) -> None:
    """The node against its op's schema at the model's opset (onnx.defs): the op exists there, the
    numbers of inputs and outputs, required inputs present, attributes known and of their type.
    A model that breaks its schema is malformed (DataFormatError)."""
    defs = require_onnx().defs
    try:
        schema = defs.get_schema(n.op, n.opset, "")
    except defs.SchemaError:
        raise n.fail(f"is not an op of opset {n.opset}", DataFormatError) from None
    ins, outs = len(n.proto.input), len(n.proto.output)
    if not schema.min_input <= ins <= schema.max_input:
        raise n.fail(f"has {ins} inputs; opset {n.opset} gives it {schema.min_input} to {schema.max_input}",
                     DataFormatError)
    if not schema.min_output <= outs <= schema.max_output or not n.proto.output[0]:
        raise n.fail(f"has {outs} outputs; opset {n.opset} gives it {schema.min_output} to {schema.max_output}",
                     DataFormatError)
    for i, formal in enumerate(schema.inputs[: min(ins, len(schema.inputs))]):
        if not n.proto.input[i] and formal.option == defs.OpSchema.FormalParameterOption.Single:
            raise n.fail(f"leaves its required input {i} ({formal.name}) empty", DataFormatError)
    for a in n.proto.attribute:
        spec = schema.attributes.get(a.name)
        if spec is None:
            raise n.fail(f"has attribute `{a.name}`, which {n.op} does not have in opset {n.opset}", DataFormatError)
        if a.type != int(spec.type.value):
            raise n.fail(f"has attribute `{a.name}` of type {a.type}; {n.op} takes type {int(spec.type.value)}",
                         DataFormatError)


#: ops whose second input, before opset 7, broadcasts only when ``broadcast=1``, from ``axis``
_LEGACY_BROADCAST = ("Add", "Sub", "Mul", "Div")


def _legacy_broadcast(n: NodeView) -> None:
    """Opsets before 7: ``B`` of ``A op B`` is aligned to ``A`` from ``axis`` (default: the trailing
    axes) when ``broadcast=1``, and must have ``A``'s shape otherwise.  A constant ``B`` is reshaped
    here to NumPy's (right-aligned) broadcasting, which the handlers and folds use."""
    given = [k for k in ("broadcast", "axis") if k in n.attrs]
    if n.opset >= 7:
        if given:
            raise n.unsupported(given[0], n.attrs[given[0]], f"no `{given[0]}` (removed in opset 7)")
        return
    if not int(n.attrs.get("broadcast", 0)) or len(n.inputs) != 2:
        return
    a, bval = n.inputs
    if not isinstance(bval, Const) or "axis" not in n.attrs:
        return  # no axis: trailing alignment, NumPy's
    rank = a.rank if isinstance(a, Act) else np.ndim(a.value)
    axis = int(n.attrs["axis"]) % max(rank, 1)
    v = np.asarray(bval.value)
    if axis + v.ndim > rank:
        raise n.unsupported("axis", n.attrs["axis"], f"an axis where B's {v.ndim} dims fit in A's {rank}")
    n.inputs[1] = Const(v.reshape(v.shape + (1,) * (rank - axis - v.ndim)))


class Builder:
    """The net being built from one :class:`~.reader.Graph`: values by ONNX name, layers, weights.

    Handlers call :meth:`add` to append a layer (its weights in convnet's layout are copied in
    after the net is built) and :meth:`flatten` when they need a flattened map for real.
    """

    def __init__(self, graph: Graph):
        self.graph = graph
        self.net = Net(name=sanitise(graph.name) or None)
        self.values: dict[str, Const | Act] = {}
        self.params: dict[str, dict] = {}
        self.state: dict[str, dict] = {}
        self.cshapes: dict[str, tuple] = {}
        self.names: set[str] = {INPUT}
        self.done: dict[int, list] = {}  # index of a node whose work an earlier handler did -> its outputs
        self.dtype = np.dtype(np.float32)
        self.batch: int | None = None  # the batch size the model declares, if it does
        self.needed: set[str] = set()
        self.readers: dict[str, list[int]] = {}  # value name -> indices of the (needed) nodes reading it
        self.outputs: set[str] = set()
        self.hidden: set[str] = set()  # values fused away (a Conv's output before the bias Add fused into it)
        self.global_pools: dict = {}  # global pooling node -> how to make its output a map (ops_layers)

    # -- the walk -------------------------------------------------------------------------
    def convert(self, *, input_shape=None, output=None) -> Imported:
        g = self.graph
        out_name = self._pick_output(output)
        self.outputs = {out_name}
        needed_nodes = self._needed(out_name)
        self._load_initializers()
        inp_name = self._data_input(needed_nodes)
        inp = self._input_act(inp_name, input_shape) if inp_name else None
        if inp is not None:
            self.values[inp_name] = inp
            self.cshapes[INPUT] = inp.cshape
        folded = self._fold_constants(needed_nodes)
        for i in needed_nodes:
            if i in folded:
                continue
            outs = self.done.pop(i) if i in self.done else self._run(NodeView(self, self.graph.nodes[i], i))
            self._assign(i, outs)
        result = self.values[out_name]
        if not isinstance(result, Act):
            raise ConfigError(f"{g.source}: the graph output {out_name!r} is a constant; convnet nets compute "
                              "their output from the input.")
        if result.layout == SPLIT:
            raise ConfigError(f"{g.source}: the graph output {out_name!r} is a channel-split 5-D tensor, which convnet "
                              "does not produce.")
        net = self._finish(result)
        values = {k: v for k, v in self.values.items()
                  if isinstance(v, Act) and k not in self.hidden and (v.node == INPUT or v.node in net)}
        return Imported(net, inp_name, inp, out_name, result, g.opset, self.dtype, values)

    def _fold_constants(self, needed_nodes) -> set[int]:
        """Compute every node that reads only constants, first (the graph's constant subgraphs do not
        depend on the input), so that handlers see the constants a later node will use."""
        folded = set()
        for i in needed_nodes:
            proto = self.graph.nodes[i]
            entry = OPS.get(proto.op_type) if proto.domain in ("", "ai.onnx") else None
            if entry is None or entry.fold is None:
                continue
            if not all(not x or isinstance(self.values.get(x), Const) for x in proto.input):
                continue
            self._assign(i, self._run(NodeView(self, proto, i)))
            folded.add(i)
        return folded

    def _assign(self, i: int, outs: list) -> None:
        """Node ``i``'s outputs are ``outs``; one that something reads but ``outs`` lacks (a Dropout
        mask, MaxPool indices, BatchNormalization's training statistics) is refused."""
        proto = self.graph.nodes[i]
        for k, name in enumerate(proto.output):
            if not name:
                continue
            if k >= len(outs) and name in self.needed:
                raise NodeView(self, proto, i).fail(f"has its output {k} ({name!r}) read, but convnet computes only "
                                                    f"its first {len(outs)} output(s)")
            self.values[name] = outs[k] if k < len(outs) else None

    def _pick_output(self, output) -> str:
        names = [vi.name for vi in self.graph.outputs]
        if output is None:
            if len(names) != 1:
                raise ConfigError(f"{self.graph.source}: the model has {len(names)} outputs {names}; a convnet net has "
                                  "one: pass output=<name>.")
            return names[0]
        if output not in names:
            raise ConfigError(f"Argument `output` must name a graph output of {self.graph.source}, one of {names}; "
                              f"received {output!r}.")
        return output

    def _needed(self, out_name: str) -> list[int]:
        """Indices of the nodes the output depends on (in order); fills :attr:`needed` and :attr:`readers`."""
        nodes = self.graph.nodes
        self.needed = {out_name}
        keep = []
        for i in range(len(nodes) - 1, -1, -1):
            if any(o in self.needed for o in nodes[i].output if o):
                keep.append(i)
                self.needed.update(x for x in nodes[i].input if x)
        keep.reverse()
        for i in keep:
            for x in nodes[i].input:
                if x:
                    self.readers.setdefault(x, []).append(i)
        return keep

    def _load_initializers(self) -> None:
        g = self.graph
        for name, t in g.initializers.items():
            if name in self.needed:
                self.values[name] = Const(g.array(t, f"initializer {name!r}"))

    def _data_input(self, needed_nodes) -> str | None:
        g = self.graph
        data = [vi.name for vi in g.inputs if vi.name in self.needed]
        if len(data) > 1:
            raise ConfigError(f"{g.source}: the model reads {len(data)} graph inputs {data}; a convnet net has one "
                              "input (give the others as initializers).")
        return data[0] if data else None

    def _input_act(self, name: str, input_shape) -> Act:
        g = self.graph
        vi = next(v for v in g.inputs if v.name == name)
        if not vi.type.HasField("tensor_type"):
            raise ConfigError(f"{g.source}: the graph input {name!r} is not a tensor.")
        tt = vi.type.tensor_type
        dtype = _INPUT_DTYPES.get(tt.elem_type)
        if dtype is None:
            raise ConfigError(f"{g.source}: the graph input {name!r} has element type {tt.elem_type}; convnet nets take "
                              "float32 (FLOAT) or float64 (DOUBLE) input.")
        self.dtype = dtype
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] \
            if tt.HasField("shape") else None
        if input_shape is not None:
            per = tuple(int(s) for s in input_shape)
            if dims is not None and len(dims) != len(per) + 1:
                raise ConfigError(f"Argument `input_shape` {per} has rank {len(per)}; the graph input {name!r} has "
                                  f"rank {len(dims)} with the batch.")
            onnx_shape = (per[2], per[0], per[1]) if len(per) == 3 else per
            if dims is not None and any(d not in (None, 0) and d != s for d, s in zip(dims[1:], onnx_shape)):
                raise ConfigError(f"Argument `input_shape` {per} does not match the graph input {name!r}, "
                                  f"declared {dims} (NCHW).")
        else:
            if dims is not None and len(dims) < 2:
                raise ConfigError(f"{g.source}: the graph input {name!r} has shape {dims}: no axis but the batch; "
                                  "convnet nets take samples of at least one axis.")
            if dims is None or any(not d for d in dims[1:]):
                raise ConfigError(f"{g.source}: the graph input {name!r} has shape {dims}; convnet needs every size "
                                  "but the batch: pass input_shape=(H, W, C).")
            onnx_shape = tuple(dims[1:])
        if dims:
            self.batch = dims[0] or None
        if any(s < 1 for s in onnx_shape):
            raise ConfigError(f"{g.source}: the graph input {name!r} has per-sample shape {onnx_shape}; sizes must "
                              "be positive.")
        if len(onnx_shape) == 3:
            return Act(INPUT, onnx_shape, NCHW, nchw_to_nhwc(onnx_shape))
        return Act(INPUT, onnx_shape, PLAIN, onnx_shape)

    def _run(self, n: NodeView) -> list:
        entry = OPS.get(n.op) if n.proto.domain in ("", "ai.onnx") else None
        if entry is None:
            where = f" of domain {n.proto.domain!r}" if n.proto.domain not in ("", "ai.onnx") else ""
            raise n.fail(f"is an op{where} that convnet does not import; supported ops: {sorted(OPS)}")
        _check_schema(n)
        extra = sorted(set(n.attrs) - set(entry.attributes))
        if extra:
            raise n.unsupported(extra[0], n.attrs[extra[0]], f"the attributes {list(entry.attributes)}")
        if n.op in _LEGACY_BROADCAST:
            _legacy_broadcast(n)
        present = [v for v in n.inputs if v is not None]
        if entry.fold is not None and all(isinstance(v, Const) for v in present):
            outs = entry.fold(n)
        elif entry.handler is not None:
            outs = entry.handler(self, n)
        else:
            raise n.fail("reads an activation, but convnet imports it only where it computes constants "
                         "(all its inputs initializers or folded constants)")
        return list(outs) if isinstance(outs, (list, tuple)) else [outs]

    # -- what handlers use --------------------------------------------------------------------
    def layer_name(self, n: NodeView, suffix: str = "") -> str:
        base = sanitise(n.label) or f"{n.op.lower()}{n.index}"
        base += suffix
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def add(self, n: NodeView, layer, inputs, *, params=None, state=None, suffix: str = "") -> tuple[str, tuple]:
        """Append ``layer`` reading the activations ``inputs``; returns ``(node name, per-sample output
        shape)``.  ``params``/``state``: arrays in convnet's layout copied in once the net is built."""
        name = self.layer_name(n, suffix)
        layer.dtype = self.dtype
        try:
            self.net.add(layer, inputs=[a.node for a in inputs], name=name)
            shapes = [self.cshapes[a.node] for a in inputs]
            cshape = tuple(layer.output_shape(shapes if getattr(layer, "multi_input", False) else shapes[0]))
        except ConvNetError as exc:
            raise n.fail(f"becomes {type(layer).__name__}, which refuses it: {exc}") from None
        self.cshapes[name] = cshape
        if params:
            self.params[name] = {k: np.asarray(v) for k, v in params.items()}
        if state:
            self.state[name] = {k: np.asarray(v) for k, v in state.items()}
        return name, cshape

    def flatten(self, n: NodeView, act: Act, flatten_class) -> Act:
        """``act`` with its node's output flattened for real (a Flatten layer), when it is a map
        or a vector held in another shape."""
        if len(act.cshape) == 1:
            return act
        name, cshape = self.add(n, flatten_class(), [act], suffix="_flatten")
        return act.with_node(name, cshape)

    def following_constant(self, value: str, ops=("Add",)):
        """``(index, op, constant)`` when the one node reading ``value`` is an ``ops`` node whose
        other input is a constant known now (a bias after a Conv or MatMul, a shift after a
        scale), ``value`` is not the graph output, and that node has no attributes; else None.
        The caller that fuses it marks it done (:meth:`mark_done`)."""
        readers = self.readers.get(value, [])
        if len(readers) != 1 or value in self.outputs or readers[0] in self.done:
            return None
        i = readers[0]
        proto = self.graph.nodes[i]
        if proto.op_type not in ops or proto.domain not in ("", "ai.onnx") or len(proto.attribute) \
                or len(proto.input) != 2 or len([o for o in proto.output if o]) != 1:
            return None
        other = proto.input[1] if proto.input[0] == value else proto.input[0]
        c = self.values.get(other)
        if other == value or not isinstance(c, Const) or c.has_batch:
            return None
        return i, proto.op_type, c.value

    def mark_done(self, index: int, outputs: list, *, hides: str | None = None) -> None:
        """Node ``index``'s work was done by an earlier handler; its outputs are ``outputs``.  ``hides``:
        the value between the two (its only reader was node ``index``), which the net never holds."""
        self.done[index] = outputs
        if hides:
            self.hidden.add(hides)

    # -- the end --------------------------------------------------------------------------------
    def _finish(self, result: Act) -> Net:
        net = self.net
        if result.node != INPUT:
            net.output = result.node
        keep = self._reaching(result.node)
        if len(keep) != len(net):  # layers made for values nothing ended up reading
            old = net
            net = Net(name=old.name)
            for node in old.nodes:
                if node.name in keep:
                    net.add(node.layer, inputs=list(node.inputs), name=node.name)
            if result.node != INPUT:
                net.output = result.node
        net.input_shape = self.cshapes.get(INPUT)
        try:
            net.build(rng=np.random.default_rng(0))
        except ConvNetError as exc:
            raise type(exc)(f"{self.graph.source}: {exc}") from None
        for name in keep:
            layer = net[name]
            for key, value in self.params.get(name, {}).items():
                self._copy(layer, layer.params, key, value)
            for key, value in self.state.get(name, {}).items():
                self._copy(layer, layer.state, key, value)
        return net

    def _copy(self, layer, arrays: dict, key: str, value) -> None:
        target = arrays.get(key)
        if target is None or tuple(target.shape) != tuple(value.shape):
            raise ConfigError(f"{self.graph.source}: layer {layer.name!r} has {key} of shape "
                              f"{None if target is None else tuple(target.shape)}; the model gives {tuple(value.shape)}.")
        target[...] = value.astype(target.dtype, copy=False)
        layer.weights_changed()

    def _reaching(self, out: str) -> set[str]:
        used = {out}
        for node in reversed(self.net.nodes):
            if node.name in used:
                used.update(node.inputs)
        return {n.name for n in self.net.nodes if n.name in used}
