"""Net: an ordered graph of named layers.

A :class:`Net` is a DAG of :class:`Node` objects.  Each node holds one layer and
the names of the nodes it reads from; the reserved name ``"input"`` is the
network input.  Nodes are stored in the order they were added, and a node may
only read from nodes added before it, so that order is already a topological
order: forward walks it front to back, backward back to front.  The last node
added is the output (or the one named by ``net.output``).

A chain (``INPUT -> CONV -> RELU -> POOL -> FC``) is a net whose every node
reads from the one before it; :meth:`Net.sequential` builds one.  Branches
(residual blocks, Inception modules) read from earlier nodes explicitly and
meet in a merge layer (:class:`~convnet.layers.merge.Add`,
:class:`~convnet.layers.merge.Concat`), which receives a list of arrays.

Shapes are per sample, ``(H, W, C)`` for images and ``(D,)`` for vectors;
batches are ``(N, *shape)``, NHWC.

Memory: forward drops the net's reference to each activation as soon as its
last consumer has run, so what stays alive during training is exactly what the
layers cache for backward (see :mod:`convnet.analysis.memory`).  With
``keep_cache=False`` (:meth:`Net.predict`) nothing is cached and at most the
activations still waiting for a consumer are alive.

Example::

    >>> from convnet.layers import Conv2D, ReLU, MaxPool2D, Dense
    >>> net = Net.sequential([Conv2D(8, 3, padding=1), ReLU(), MaxPool2D(2), Dense(10)])
    >>> net.output_shape((32, 32, 3))
    (10,)
    >>> [n.name for n in net.nodes]
    ['conv1', 'relu1', 'pool1', 'fc1']
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .errors import ConfigError, GeometryError, ShapeError
from .layers.base import Layer, default_rng
from .ops.geometry import reword_fit_advice

INPUT = "input"

#: prefixes for automatic node names, by layer kind (anything else: the lower-cased kind)
_AUTO_PREFIX = {"CONV": "conv", "FC": "fc", "DENSE": "fc", "POOL": "pool", "MAXPOOL": "pool", "AVGPOOL": "pool",
                "L2POOL": "pool", "FRACPOOL": "pool", "LRN": "norm", "DROPOUT": "drop"}


@dataclass(frozen=True)
class Node:
    """One node of the graph: a layer and the names of the nodes it reads."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]

    @property
    def multi_input(self) -> bool:
        return bool(getattr(self.layer, "multi_input", False))


def _shape(shape, what: str = "input_shape") -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise ShapeError(f"Argument `{what}` must be a per-sample shape such as (224, 224, 3); received {shape!r}.") from None
    if not out or any(s < 1 for s in out):
        raise ShapeError(f"Argument `{what}` must be a non-empty tuple of positive sizes; received {shape!r}.")
    return out


class Net:
    """A DAG of named layers with shape inference, forward, backward and inference mode.

    Arguments:
        name: a name for the whole network (``"vgg16"``).
        input_shape: the per-sample input shape, when known (``(224, 224, 3)``);
            used whenever a method's ``input_shape`` argument is left out.
    """

    def __init__(self, *, name: str | None = None, input_shape=None):
        self.name = name
        self.input_shape = None if input_shape is None else _shape(input_shape)
        self._nodes: dict[str, Node] = {}
        self._output: str | None = None
        #: what follows the logits, when the architecture names it ("softmax"); the net itself outputs logits
        self.head: str | None = None
        self._built_for: tuple[int, ...] | None = None
        self._out_shape: tuple[int, ...] | None = None
        #: let ReLU and ADD write into an input that no other node reads (see :meth:`forward`)
        self.inplace = True

    # -- construction -------------------------------------------------------------
    @classmethod
    def sequential(cls, layers: Iterable[Layer], *, name: str | None = None, input_shape=None) -> Net:
        """A chain: each layer reads the output of the one before it."""
        net = cls(name=name, input_shape=input_shape)
        for layer in layers:
            net.add(layer)
        return net

    def add(self, layer: Layer, *, inputs=None, name: str | None = None) -> str:
        """Append ``layer`` as a node and return its name.

        ``inputs``: a node name or a list of them (default: the last node added,
        or ``"input"`` for the first).  ``name``: the node name (default:
        ``layer.name``, else an automatic ``conv3``/``relu2``/``fc1``...).  The
        layer's ``name`` is set to the node name.
        """
        if not isinstance(layer, Layer):
            raise ConfigError(f"Net.add: `layer` must be a convnet Layer; received {type(layer).__name__}.")
        if any(n.layer is layer for n in self._nodes.values()):
            raise ConfigError(f"Net.add: layer {layer.label} is already in the net; create a new layer for each node.")
        if inputs is None:
            inputs = (self.output_name,)
        elif isinstance(inputs, str):
            inputs = (inputs,)
        else:
            inputs = tuple(inputs)
        for i in inputs:
            if i != INPUT and i not in self._nodes:
                raise ConfigError(
                    f"Net.add: input {i!r} is not a node of the net; expected one of {[INPUT, *self._nodes]}."
                )
        multi = bool(getattr(layer, "multi_input", False))
        if multi and len(inputs) < 2:
            raise ConfigError(f"Net.add: merge layer {layer.label} needs at least two inputs; received {list(inputs)}.")
        if not multi and len(inputs) != 1:
            raise ConfigError(f"Net.add: layer {layer.label} takes exactly one input; received {list(inputs)}.")
        name = name or layer.name or self._auto_name(layer)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"Net.add: `name` must be a non-empty string; received {name!r}.")
        if name == INPUT or name in self._nodes:
            raise ConfigError(f"Net.add: the node name {name!r} is already taken; node names must be unique.")
        layer.name = name
        self._nodes[name] = Node(name, layer, inputs)
        self._output = name
        self._built_for = None
        return name

    def replace(self, name: str, layer: Layer) -> None:
        """Put ``layer`` in place of node ``name`` (same inputs and consumers); it is built
        at the next :meth:`build` or forward.  Used to swap a classifier for fine-tuning."""
        old = self.node(name)
        if not isinstance(layer, Layer):
            raise ConfigError(f"Net.replace: `layer` must be a convnet Layer; received {type(layer).__name__}.")
        layer.name = name
        self._nodes[name] = Node(name, layer, old.inputs)
        self._built_for = None

    def add_chain(self, layers: Iterable[Layer], *, inputs=None) -> str:
        """Append layers one after another, the first reading ``inputs``; return the last name."""
        last = None
        for i, layer in enumerate(layers):
            last = self.add(layer, inputs=inputs if i == 0 else None)
        if last is None:
            raise ConfigError("Net.add_chain: received no layers.")
        return last

    def _auto_name(self, layer: Layer) -> str:
        kind = str(getattr(layer, "kind", type(layer).__name__)).upper()
        prefix = _AUTO_PREFIX.get(kind, kind.lower().replace(" ", "_"))
        count = sum(
            1 for n in self._nodes.values() if _AUTO_PREFIX.get(str(n.layer.kind).upper(), str(n.layer.kind).lower()) == prefix
        )
        i = count + 1
        while f"{prefix}{i}" in self._nodes:
            i += 1
        return f"{prefix}{i}"

    # -- lookup -------------------------------------------------------------------
    @property
    def nodes(self) -> list[Node]:
        """Nodes in topological (insertion) order."""
        return list(self._nodes.values())

    @property
    def layers(self) -> list[Layer]:
        return [n.layer for n in self._nodes.values()]

    @property
    def output_name(self) -> str:
        return self._output or INPUT

    @property
    def output(self) -> str:
        """Name of the output node (default: the last node added)."""
        return self.output_name

    @output.setter
    def output(self, name: str) -> None:
        if name not in self._nodes:
            raise ConfigError(f"Net.output must name a node; received {name!r}.")
        self._output = name

    def node(self, name: str) -> Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise KeyError(f"no node named {name!r} in the net; nodes are {list(self._nodes)}") from None

    def __getitem__(self, name: str) -> Layer:
        return self.node(name).layer

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    @property
    def is_sequential(self) -> bool:
        """True when every node reads exactly the node before it (a chain)."""
        prev = INPUT
        for node in self._nodes.values():
            if node.inputs != (prev,):
                return False
            prev = node.name
        return prev == self.output_name

    def consumers(self) -> dict[str, list[str]]:
        """Map each node name (and ``"input"``) to the names of the nodes that read it."""
        out: dict[str, list[str]] = {INPUT: [], **{n: [] for n in self._nodes}}
        for node in self._nodes.values():
            for i in node.inputs:
                out[i].append(node.name)
        return out

    # -- shapes -------------------------------------------------------------------
    def _resolve_input_shape(self, input_shape) -> tuple[int, ...]:
        if input_shape is None:
            if self.input_shape is None:
                raise ShapeError(
                    f"Net {self.name or ''}: no input shape given and the net has none; pass input_shape, e.g. (32, 32, 3)."
                )
            return self.input_shape
        return _shape(input_shape)

    def shapes(self, input_shape=None) -> dict[str, tuple[int, ...]]:
        """Per-sample output shape of every node (and ``"input"``), without running anything."""
        shapes = {INPUT: self._resolve_input_shape(input_shape)}
        for node in self._nodes.values():
            ins = [shapes[i] for i in node.inputs]
            try:
                shapes[node.name] = tuple(node.layer.output_shape(ins if node.multi_input else ins[0]))
            except GeometryError as e:
                # a layer written in the pattern language (convnet.pattern sets `pattern_text`):
                # the way out of an uneven tiling is /FLOOR or /CEIL there, not fit='crop'/'pad'
                text = getattr(node.layer, "pattern_text", None)
                if text is None or e.reason is None:
                    raise
                raise reword_fit_advice(e, crop=f"write {text}/FLOOR", pad=f"{text}/CEIL") from None
        return shapes

    def output_shape(self, input_shape=None) -> tuple[int, ...]:
        """Per-sample output shape of the net for a per-sample ``input_shape``."""
        return self.shapes(input_shape)[self.output_name]

    # -- parameters -----------------------------------------------------------------
    def build(self, input_shape=None, *, rng=None) -> Net:
        """Check every shape and create every layer's parameters from one generator.

        Layers already built for the same input shape keep their parameters.
        Returns the net, so ``net = zoo.get("vgg16").build(rng=rng)`` reads well.
        """
        rng = default_rng(rng)
        shapes = self.shapes(input_shape)
        self._check_connected()
        for node in self._nodes.values():
            ins = [shapes[i] for i in node.inputs]
            s = tuple(ins) if node.multi_input else ins[0]
            layer = node.layer
            if layer.built and (layer.input_shape == s or layer.accepts(s)):
                continue
            if layer.built and layer.params:
                raise ShapeError(
                    f"Net {self.name or ''}: layer {node.name!r} was built for input {layer.input_shape} and its "
                    f"parameters do not fit input {s} (received a net input of {shapes[INPUT]}); "
                    "feed the size the net was built for, or build a new net for this size."
                )
            layer.build(list(ins) if node.multi_input else ins[0], rng=rng)
        self._built_for = shapes[INPUT]
        if self.input_shape is None:
            self.input_shape = shapes[INPUT]
        return self

    @property
    def built(self) -> bool:
        return self._built_for is not None

    def _check_connected(self) -> None:
        used = {self.output_name}
        for node in reversed(self.nodes):
            if node.name in used:
                used.update(node.inputs)
        dangling = [n for n in self._nodes if n not in used]
        if dangling:
            raise ConfigError(
                f"Net {self.name or ''}: nodes {dangling} do not lead to the output {self.output_name!r}; "
                "remove them or merge them into the graph."
            )

    def named_parameters(self, *, trainable_only: bool = True) -> Iterator[tuple[str, object, object]]:
        """Yield ``(qualified_name, param, grad)`` for every trainable array, in node order.

        The name is ``layer.name + "." + key`` (``"conv1_1.w"``, ``"layer1.0.bn1.gamma"``);
        ``grad`` is ``layer.grads.get(key)`` (None before the first backward
        if the layer has not allocated it).  Frozen layers (``trainable = False``)
        are left out unless ``trainable_only=False`` (checkpoints save them too).
        """
        for node in self._nodes.values():
            layer = node.layer
            if trainable_only and not getattr(layer, "trainable", True):
                continue
            for key, p in layer.params.items():
                yield f"{node.name}.{key}", p, layer.grads.get(key)

    def named_state(self) -> Iterator[tuple[str, object]]:
        """Yield ``(qualified_name, buffer)`` for non-trained buffers (BatchNorm running stats)."""
        for node in self._nodes.values():
            for key, v in node.layer.state.items():
                yield f"{node.name}.{key}", v

    def num_params(self, input_shape=None) -> int:
        """Number of trainable values; computed from shapes alone when the net is not built."""
        if self.built and input_shape is None:
            return int(sum(p.size for _, p, _ in self.named_parameters(trainable_only=False)))
        from .analysis.costs import layer_cost

        shapes = self.shapes(input_shape)
        total = 0
        for node in self._nodes.values():
            ins = [shapes[i] for i in node.inputs]
            c = layer_cost(node.layer, ins, shapes[node.name])
            total += c.weights + c.biases
        return total

    # -- compute --------------------------------------------------------------------
    def forward(
        self,
        x,
        *,
        train: bool = False,
        keep_cache: bool = True,
        observer: Callable[[str, object], None] | None = None,
    ):
        """Run the net on a batch ``x`` of shape ``(N, *input_shape)``; return the output ``(N, *out)``.

        ``train``: training behaviour (dropout on, batch statistics in BatchNorm).
        ``keep_cache``: keep what backward needs (False = inference mode).
        ``observer(name, y)``: called with every node's output as soon as it is computed.
        The net holds each activation only until its last consumer has run.

        In place: a layer that can (``layer.inplace``: ReLU, ADD) is let write its output into
        an input that nothing else reads — the output of a node read by this node alone, whose
        layer keeps no reference to it (``layer.output_private``: CONV, BN, FC, ADD, ...), and
        not the caller's ``x`` nor the net's output — as PyTorch's ``ReLU(inplace=True)``, and
        the result is the same to the bit.  It saves an activation-sized array and its page
        faults per such node.  Never with an ``observer`` (it may keep the arrays it is shown),
        nor when ``net.inplace`` is False.
        """
        xshape = getattr(x, "shape", None)
        if xshape is None or len(xshape) < 2:
            raise ShapeError(f"Net.forward: `x` must be a batch (N, *input_shape); received {type(x).__name__} of shape {xshape}.")
        if self._built_for != tuple(xshape[1:]):
            self.build(tuple(xshape[1:]))
        consumers = self.consumers()
        remaining = {k: len(v) for k, v in consumers.items()}
        out_name = self.output_name
        remaining[out_name] += 1  # the caller
        acts = {INPUT: x}
        del x
        private = self._private_outputs(consumers) if self.inplace and observer is None else frozenset()
        for node in self._nodes.values():
            ins = [acts[i] for i in node.inputs]
            kw = {}
            if node.layer.inplace and private:
                free = [i in private for i in node.inputs]
                kw["inplace"] = free if node.multi_input else free[0]
            y = node.layer.forward(ins if node.multi_input else ins[0], train=train, keep_cache=keep_cache, **kw)
            del ins
            for i in node.inputs:
                remaining[i] -= 1
                if remaining[i] == 0:
                    del acts[i]
            if observer is not None:
                observer(node.name, y)
            acts[node.name] = y
            del y
        self._out_shape = tuple(acts[out_name].shape)
        return acts.pop(out_name)

    def _private_outputs(self, consumers: dict) -> frozenset:
        """Names of the nodes whose output one later node may overwrite: read by exactly one
        node (once, in ``consumers`` = :meth:`consumers`), from a layer that keeps no reference
        to it, and not the net's output."""
        return frozenset(
            name for name, readers in consumers.items()
            if name != INPUT and name != self.output_name and len(readers) == 1
            and self._nodes[name].layer.output_private
        )

    def predict(self, x):
        """Inference: ``forward(x, train=False, keep_cache=False)`` — no caches, activations freed early."""
        return self.forward(x, train=False, keep_cache=False)

    def __call__(self, x, *, train: bool = False):
        return self.forward(x, train=train)

    def backward(self, dloss, *, input_grad: bool = True):
        """Backpropagate ``dloss`` (the gradient of the loss w.r.t. the output) and return ``dx``.

        Fills every layer's ``grads``.  Gradients of a node read by several
        nodes are summed — into one of the two arrays when no one else holds it (the sum is
        the same to the bit: float addition commutes), else into a new one.  Each layer's cache is released as it is used.
        A ReLU overwrites the gradient it receives when no one else holds that array
        (it came from a layer with ``grad_private``, or is a sum; never ``dloss``).
        ``input_grad=False`` (training) skips the gradient with respect to the
        input images where a layer can (CONV, FC: no col2im for the first layer)
        and returns None.
        """
        if self._out_shape is None:
            raise ConfigError("Net.backward: call forward(x, keep_cache=True) first.")
        if tuple(getattr(dloss, "shape", ())) != self._out_shape:
            raise ShapeError(
                f"Net.backward: `dloss` must have the output's shape {self._out_shape}; "
                f"received shape {tuple(getattr(dloss, 'shape', ()))}."
            )
        grads = {self.output_name: dloss}
        del dloss
        owned = set()  # nodes whose gradient array no one else holds: a ReLU may overwrite it
        for node in reversed(self.nodes):
            dy = grads.pop(node.name, None)
            if dy is None:
                node.layer.clear_cache()
                continue
            if not input_grad and node.inputs == (INPUT,) and getattr(node.layer, "can_skip_dx", False):
                node.layer.backward(dy, need_dx=False)
                continue
            if node.layer.inplace and not node.multi_input and node.name in owned and self.inplace:
                dx = node.layer.backward(dy, inplace=True)
            else:
                dx = node.layer.backward(dy)
            del dy
            dxs = dx if node.multi_input else [dx]
            del dx
            dx_private = node.layer.grad_private and not node.multi_input
            for i, d in zip(node.inputs, dxs):
                if i in grads:  # a fan-out: sum into whichever of the two no one else holds
                    if self.inplace and i in owned and d is not grads[i]:
                        grads[i] += d
                    elif self.inplace and dx_private:
                        d += grads[i]
                        grads[i] = d
                    else:
                        grads[i] = grads[i] + d
                    owned.add(i)
                else:
                    grads[i] = d
                    if dx_private:
                        owned.add(i)
            d = dxs = None
        self._out_shape = None
        return grads.pop(INPUT, None)

    def clear_cache(self) -> None:
        """Drop every layer's cache, and this thread's reused op scratch buffers
        (:func:`convnet.ops.scratch.release`)."""
        from .ops import scratch

        for layer in self.layers:
            layer.clear_cache()
        self._out_shape = None
        scratch.release()

    # -- reports --------------------------------------------------------------------
    def summary(self, input_shape=None, batch: int = 1, **kwargs):
        """A :class:`~convnet.analysis.summary.Summary` (one row per layer); see that module."""
        from .analysis.summary import summarize

        return summarize(self, input_shape, batch=batch, **kwargs)

    def explain(self, input_shape=None, batch: int = 1, **kwargs):
        """The convolution algorithm of every CONV layer for ``batch`` samples, its multiplies and
        workspace: an :class:`~convnet.analysis.explain.Explanation` (``print(net.explain().to_text())``)."""
        from .analysis.explain import explain

        return explain(self, input_shape, batch=batch, **kwargs)

    def to_pattern(self) -> str:
        """The net in the pattern language (sequential nets only); ``parse`` reads it back."""
        from .pattern import to_pattern

        return to_pattern(self)

    def __repr__(self) -> str:
        head = f"Net({self.name!r}" if self.name else "Net("
        return f"{head}{', ' if self.name else ''}{len(self._nodes)} nodes, output={self.output_name!r})"
