"""Reading an ONNX file safely: protobuf only, sizes checked before allocating, data kept inside its folder.

:func:`read_model` turns a ``.onnx`` file (or a ``ModelProto``, or its bytes) into a
:class:`Graph` that the importer can trust:

* **Parsing runs no code.**  The file is parsed by onnx's protobuf classes (``ModelProto``),
  nothing else: no pickle, no custom operator libraries, no onnx checker or shape inference.
* **Structure.**  It has a graph and an ``ai.onnx`` opset in :data:`OPSETS`; every value is
  produced once (SSA); every node input is a graph input, an initializer or the output of a
  node; the nodes are sorted into an order where each reads only what came before (Kahn), so a
  cycle is found and named.  Anything else is a :class:`~convnet.errors.DataFormatError`
  naming the file.
* **Sizes before allocation.**  A tensor's ``dims × itemsize`` is computed in Python integers
  and compared with the bytes present (``raw_data``, the typed field, or the external file's
  size past ``offset``) and with :data:`MAX_TENSOR_BYTES` before any array is made.
* **External data stays in the model's folder** (onnx issues 3991, 7040, 7686): a ``location``
  that is absolute, has a ``..`` component, or passes through a symbolic link — or resolves
  outside the folder — is a :class:`~convnet.errors.SecurityError`; the file is opened
  without following links.

``onnx`` is an optional dependency: it is imported inside the functions that need it.
"""
from __future__ import annotations

import math
import os
import re
import stat
import heapq
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataFormatError, SecurityError

__all__ = ["Graph", "read_model", "require_onnx", "OPSETS", "MAX_MODEL_BYTES", "MAX_TENSOR_BYTES", "DTYPES"]

#: the ``ai.onnx`` opsets whose operator semantics the importer knows
OPSETS = range(6, 26)
#: protobuf cannot parse a message over 2 GiB; larger models keep their weights in external data
MAX_MODEL_BYTES = 2**31 - 1
#: the default cap on the bytes one tensor (an initializer, a constant, a folded ConstantOfShape) may
#: claim (``max_bytes=`` changes it); VGG16's largest, fc6, is 411 MB
MAX_TENSOR_BYTES = 2**31

#: ONNX ``TensorProto.DataType`` → NumPy dtype (the types a CNN's constants use)
DTYPES = {
    1: np.dtype(np.float32), 2: np.dtype(np.uint8), 3: np.dtype(np.int8), 4: np.dtype(np.uint16),
    5: np.dtype(np.int16), 6: np.dtype(np.int32), 7: np.dtype(np.int64), 9: np.dtype(np.bool_),
    10: np.dtype(np.float16), 11: np.dtype(np.float64), 12: np.dtype(np.uint32), 13: np.dtype(np.uint64),
}
#: which repeated field holds a tensor's values when it has no ``raw_data``
_TYPED_FIELD = {1: "float_data", 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data",
                6: "int32_data", 9: "int32_data", 10: "int32_data", 7: "int64_data", 11: "double_data",
                12: "uint64_data", 13: "uint64_data"}
_DEFAULT, _EXTERNAL = 0, 1  # TensorProto.DataLocation


def require_onnx():
    """The ``onnx`` module, or a ConfigError saying how to install it."""
    try:
        import onnx  # noqa: PLC0415 (an optional dependency)
    except ImportError:
        raise ConfigError("Reading ONNX models needs the `onnx` package; install it with "
                          "`pip install convnet[onnx]` (or `pip install onnx`).") from None
    return onnx


@dataclass
class Graph:
    """A parsed, checked ONNX model (see the module docstring for what is checked).

    ``nodes`` are in an order where each reads only graph inputs, initializers and earlier
    nodes; ``inputs`` are the graph inputs that are not initializers (the data); ``source``
    names the file in every message; ``folder`` is where external data may live (None: none may).
    """

    model: object  # onnx.ModelProto
    source: str
    folder: Path | None
    opset: int
    nodes: list
    initializers: dict  # name -> TensorProto
    inputs: list  # ValueInfoProto of the data inputs
    outputs: list  # ValueInfoProto
    #: the cap on the bytes of one tensor
    max_bytes: int = MAX_TENSOR_BYTES

    @property
    def name(self) -> str:
        return self.model.graph.name

    def fail(self, message: str) -> DataFormatError:
        return DataFormatError(f"{self.source}: {message}")

    def array(self, tensor, what: str) -> np.ndarray:
        """The values of a ``TensorProto`` as a NumPy array (a copy the caller may keep), after
        checking its declared size against the bytes present; ``what`` names it in messages."""
        dtype = DTYPES.get(tensor.data_type)
        if dtype is None:
            if tensor.data_type == 0 or tensor.data_type > 64:
                raise self.fail(f"{what} has no valid element type (data_type={tensor.data_type}).")
            raise ConfigError(f"{self.source}: {what} has element type {_type_name(tensor.data_type)}, which convnet "
                              f"does not read; supported: {sorted(_type_name(t) for t in DTYPES)}.")
        dims = tuple(int(d) for d in tensor.dims)
        if any(d < 0 for d in dims):
            raise self.fail(f"{what} declares a negative dimension in {list(dims)}.")
        count = math.prod(dims)
        nbytes = count * dtype.itemsize
        if nbytes > self.max_bytes:
            raise self.fail(f"{what} declares {list(dims)} × {dtype.itemsize} bytes = {nbytes} bytes, over the cap of "
                            f"{self.max_bytes} bytes per tensor (max_bytes).")
        if tensor.HasField("segment"):
            raise ConfigError(f"{self.source}: {what} is a segment of a tensor, which convnet does not read.")
        if tensor.data_location == _EXTERNAL:
            raw = self._external(tensor, nbytes, what)
        elif tensor.data_location != _DEFAULT:
            raise self.fail(f"{what} has an unknown data_location {tensor.data_location}.")
        elif tensor.HasField("raw_data"):
            raw = tensor.raw_data
            if len(raw) != nbytes:
                raise self.fail(f"{what} declares {list(dims)} ({nbytes} bytes of {dtype}) but holds {len(raw)} bytes.")
        else:
            return self._typed(tensor, dtype, dims, count, what)
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)

    def _typed(self, tensor, dtype, dims, count, what) -> np.ndarray:
        name = _TYPED_FIELD[tensor.data_type]
        values = getattr(tensor, name)
        if len(values) != count:
            raise self.fail(f"{what} declares {list(dims)} ({count} values) but its {name} holds {len(values)}.")
        if tensor.data_type == 10:  # float16 values are stored as their bit patterns
            return np.asarray(values, dtype=np.uint16).view(np.float16).reshape(dims)
        try:
            return np.asarray(values, dtype=np.int64 if name == "int32_data" else None).astype(dtype).reshape(dims)
        except OverflowError:
            raise self.fail(f"{what} holds values out of range for {dtype}.") from None

    def _external(self, tensor, nbytes: int, what: str) -> bytes:
        info = {}
        for entry in tensor.external_data:
            if entry.key in info:
                raise self.fail(f"{what} names its external-data key {entry.key!r} twice.")
            info[entry.key] = entry.value
        location = info.get("location")
        if not location:
            raise self.fail(f"{what} is stored as external data but names no location.")
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise self.fail(f"{what} has a non-integer external-data offset or length "
                            f"({info.get('offset')!r}, {info.get('length')!r}).") from None
        if offset < 0 or (length is not None and length < 0):
            raise self.fail(f"{what} has a negative external-data offset or length ({offset}, {length}).")
        if length is not None and length != nbytes:
            raise self.fail(f"{what} declares {nbytes} bytes but its external data has length {length}.")
        path = self._external_path(location, what)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise SecurityError(f"{self.source}: {what}'s external data {location!r} is not a regular file.")
            if offset + nbytes > st.st_size:
                raise self.fail(f"{what} needs {nbytes} bytes at offset {offset} of {location!r}, which has "
                                f"{st.st_size} bytes.")
            with os.fdopen(fd, "rb", closefd=False) as f:
                f.seek(offset)
                data = f.read(nbytes)
        finally:
            os.close(fd)
        if len(data) != nbytes:
            raise self.fail(f"{location!r} ended while reading {what} ({len(data)} of {nbytes} bytes).")
        return data

    def _external_path(self, location: str, what: str) -> str:
        """The file that ``location`` names inside :attr:`folder`, or SecurityError."""
        refuse = f"{self.source}: {what}'s external data location {location!r}"
        if self.folder is None:
            raise SecurityError(f"{refuse} cannot be checked: the model was not read from a file, so it has no "
                                "folder its data could stay in.")
        if "\x00" in location or os.path.isabs(location) or location.startswith(("/", "\\")) or \
                re.match(r"^[A-Za-z]:", location):
            raise SecurityError(f"{refuse} is absolute; external data must be a relative path inside the model's folder.")
        parts = re.split(r"[\\/]+", location)
        if any(p == ".." for p in parts):
            raise SecurityError(f"{refuse} leaves the model's folder ('..'); external data must stay inside it.")
        folder = self.folder.resolve()
        current = folder
        for part in (p for p in parts if p not in ("", ".")):
            current = current / part
            try:
                st = os.lstat(current)
            except OSError:
                raise self.fail(f"{what}'s external data {location!r} does not exist next to the model.") from None
            if stat.S_ISLNK(st.st_mode):
                raise SecurityError(f"{refuse} passes through the symbolic link {current}; external data must be a "
                                    "plain file inside the model's folder.")
        resolved = Path(os.path.realpath(current))
        if os.path.commonpath([str(resolved), str(folder)]) != str(folder) or resolved == folder:
            raise SecurityError(f"{refuse} resolves to {resolved}, outside the model's folder {folder}.")
        return str(resolved)


def _type_name(data_type: int) -> str:
    try:
        return require_onnx().TensorProto.DataType.Name(data_type)
    except ValueError:
        return str(data_type)


def read_model(model, *, source: str | None = None, max_bytes: int = MAX_TENSOR_BYTES) -> Graph:
    """Parse and check an ONNX model: a path to a ``.onnx`` file, its bytes, or a ``ModelProto``.

    External data is read only for a model read from a path (from its folder).  ``max_bytes``
    caps the bytes any one tensor may claim (initializers and folded constants).  Raises
    DataFormatError (malformed), SecurityError (data outside the folder) or ConfigError (an
    opset or type convnet does not read), each naming ``source`` (default: the file).
    """
    onnx = require_onnx()
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ConfigError(f"Argument `max_bytes` must be a positive integer; received {max_bytes!r}.")
    folder = None
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        source = source or str(path)
        if not path.is_file():
            raise DataFormatError(f"{source}: the ONNX model does not exist or is not a regular file.")
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise DataFormatError(f"{source}: {size} bytes is over protobuf's 2 GiB limit for one message; such a model "
                                  "keeps its weights in external data files.")
        data = path.read_bytes()
        folder = path.parent
        proto = _parse(onnx, data, source)
    elif isinstance(model, (bytes, bytearray, memoryview)):
        source = source or "<ONNX bytes>"
        proto = _parse(onnx, bytes(model), source)
    elif isinstance(model, onnx.ModelProto):
        source = source or f"<ONNX model {model.graph.name or 'unnamed'}>"
        proto = model
    else:
        raise ConfigError(f"Argument `model` must be a path, bytes or an onnx.ModelProto; received {type(model).__name__}.")
    graph = _check(onnx, proto, source, folder)
    graph.max_bytes = max_bytes
    return graph


def _parse(onnx, data: bytes, source: str):
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, or whatever a damaged message raises inside protobuf
        raise DataFormatError(f"{source}: not a valid ONNX protobuf ({type(exc).__name__}: {str(exc)[:120]}).") from None
    return proto


def _check(onnx, proto, source: str, folder) -> Graph:
    def fail(message):
        return DataFormatError(f"{source}: {message}")

    if not proto.HasField("graph"):
        raise fail("not an ONNX model (it has no graph).")
    if proto.ir_version < 3:
        raise fail(f"not an ONNX model this reader knows (IR version {proto.ir_version}; expected 3 or later).")
    opset = None
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            if opset is not None:
                raise fail("declares the ai.onnx opset twice.")
            opset = int(entry.version)
    if opset is None:
        raise fail("declares no ai.onnx opset (opset_import).")
    if opset not in OPSETS:
        raise ConfigError(f"{source}: opset {opset} is not supported; convnet reads ai.onnx opsets "
                          f"{OPSETS.start} to {OPSETS.stop - 1}.")
    g = proto.graph
    _check_text(proto, fail)
    if len(g.sparse_initializer):
        raise ConfigError(f"{source}: sparse initializers are not supported.")
    initializers = {}
    for t in g.initializer:
        if not t.name:
            raise fail("has an initializer without a name.")
        if t.name in initializers:
            raise fail(f"has two initializers named {t.name!r}.")
        initializers[t.name] = t
    defined = set(initializers)
    inputs = []
    for vi in g.input:
        if not vi.name:
            raise fail("has a graph input without a name.")
        if vi.name in initializers:
            continue  # IR < 4: initializers are listed as inputs too
        if vi.name in defined:
            raise fail(f"has two graph inputs named {vi.name!r}.")
        defined.add(vi.name)
        inputs.append(vi)
    nodes = _sorted_nodes(g.node, defined, fail)
    produced = defined | {o for n in nodes for o in n.output if o}
    for vi in g.output:
        if vi.name not in produced:
            raise fail(f"names the graph output {vi.name!r}, which no node, input or initializer defines.")
    if not len(g.output):
        raise fail("has no graph output.")
    return Graph(proto, source, folder, opset, nodes, initializers, inputs, list(g.output))


def _check_text(proto, fail) -> None:
    """Every name the importer reads is text: protobuf hands back ``bytes`` for a string field that
    is not valid UTF-8."""
    g = proto.graph
    names = [("the graph name", g.name)]
    names += [("an initializer name", t.name) for t in g.initializer]
    names += [("a graph input or output name", v.name) for v in (*g.input, *g.output)]
    for t in g.initializer:
        names += [("an external-data entry", x) for e in t.external_data for x in (e.key, e.value)]
    for node in g.node:
        names += [("a node name", node.name), ("an op type", node.op_type), ("an op domain", node.domain)]
        names += [("a node input or output name", x) for x in (*node.input, *node.output)]
        names += [("an attribute name", a.name) for a in node.attribute]
    names += [("an opset domain", o.domain) for o in proto.opset_import]
    for what, text in names:
        if not isinstance(text, str):
            raise fail(f"has {what} that is not valid UTF-8 text ({bytes(text)[:40]!r}).")


def _sorted_nodes(nodes, defined: set, fail) -> list:
    """The nodes in an order where each reads only ``defined`` names and earlier outputs (Kahn's
    algorithm taking the earliest ready node first, so a sorted graph keeps its order); DataFormatError for a value produced
    twice, an input nothing produces, or a cycle."""
    producer = {}
    for i, node in enumerate(nodes):
        if not node.op_type:
            raise fail(f"node {i} ({node.name!r}) has no op_type.")
        for out in node.output:
            if not out:
                continue
            if out in defined or out in producer:
                raise fail(f"the value {out!r} is produced twice (by node {node.name or i!r}); ONNX graphs are SSA.")
            producer[out] = i
    waiting = [0] * len(nodes)
    readers: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            if not name or name in defined:
                continue
            j = producer.get(name)
            if j is None:
                raise fail(f"node {node.name or i!r} ({node.op_type}) reads {name!r}, which no node, graph input or "
                           "initializer defines (a missing initializer?).")
            waiting[i] += 1
            readers.setdefault(j, []).append(i)
    ready = [i for i in range(len(nodes)) if waiting[i] == 0]  # a heap: the earliest ready node first
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in readers.get(i, ()):
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, k)
    if len(order) != len(nodes):
        stuck = [nodes[i].name or f"#{i} {nodes[i].op_type}" for i in range(len(nodes)) if waiting[i]][:5]
        raise fail(f"the graph has a cycle through nodes {stuck}; ONNX graphs are acyclic.")
    return [nodes[i] for i in order]
