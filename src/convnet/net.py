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
activations still waiting for a consumer are alive.  Which arrays a pass may
overwrite is one plan, :meth:`Net.ownership` (:func:`convnet.graph.plan_ownership`),
that forward and backward follow and the memory model replays.

Device: parameters and state are created with the net's array module :attr:`Net.xp`
(NumPy; :meth:`Net.to` moves a built net to another, ``net.to("gpu")`` to CuPy, see docs/gpu.md).
An input on another device than the net is refused by forward, in one sentence.

Reports are functions of a net, not methods: ``convnet.summary(net)``,
``convnet.explain(net)``, ``convnet.to_pattern(net)`` (this module imports no analysis).

Example::

    >>> from convnet.layers import Conv2D, ReLU, MaxPool2D, Dense
    >>> net = Net.sequential([Conv2D(8, 3, padding=1), ReLU(), MaxPool2D(2), Dense(10)])
    >>> net.output_shape((32, 32, 3))
    (10,)
    >>> [n.name for n in net.nodes]
    ['conv1', 'relu1', 'pool1', 'fc1']
"""
from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .device import check_input, check_net, resolve_device
from .errors import ConfigError, GeometryError, ShapeError
from .graph import (
    INPUT,
    SUM_INTO_HELD,
    SUM_INTO_NEW,
    Node,
    Ownership,
    consumers,
    plan_folds,
    plan_ownership,
    plan_relu_fusion,
)
from .layers.base import Layer, NamedParam, default_rng
from .ops import scratch
from .ops.fast.conv import prepack_enabled
from .ops.geometry import reword_fit_advice

__all__ = ["INPUT", "Net", "Node"]


def name_prefix(layer: Layer) -> str:
    """The prefix of ``layer``'s automatic node names: its ``name_prefix``, else its kind in lower case."""
    return layer.name_prefix or str(layer.kind).lower().replace(" ", "_")


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
        #: run a ReLU inside the BN before it, and fold BN into the CONV before it at inference
        #: (see :meth:`forward`); False runs every layer by itself
        self.fuse = True
        self._fused_relus: frozenset = frozenset()  # the ReLUs the last forward ran inside their BN
        #: the array module parameters and state are created with (see :meth:`to`)
        self.xp = np
        self._plans: dict = {}  # (inplace, input_grad, output) -> Ownership, until the graph changes

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
        self._plans.clear()
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
        self._plans.clear()

    def add_chain(self, layers: Iterable[Layer], *, inputs=None) -> str:
        """Append layers one after another, the first reading ``inputs``; return the last name."""
        last = None
        for i, layer in enumerate(layers):
            last = self.add(layer, inputs=inputs if i == 0 else None)
        if last is None:
            raise ConfigError("Net.add_chain: received no layers.")
        return last

    def _auto_name(self, layer: Layer) -> str:
        prefix = name_prefix(layer)
        count = sum(1 for n in self._nodes.values() if name_prefix(n.layer) == prefix)
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
        return consumers(self._nodes.values())

    def ownership(self, *, input_grad: bool = True) -> Ownership:
        """Which arrays :meth:`forward` and :meth:`backward` may overwrite (the in-place plan:
        :func:`convnet.graph.plan_ownership`, with this net's ``inplace`` switch); kept until
        the graph changes."""
        key = (bool(self.inplace), bool(input_grad), self.output_name)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_ownership(self._nodes.values(), self.output_name, inplace=self.inplace,
                                                     input_grad=input_grad)
        return plan

    def folds(self) -> dict[str, str]:
        """``{conv node: BN node}`` that :meth:`predict` runs as one convolution, the BN folded into
        the CONV's weights and bias (:func:`convnet.graph.plan_folds`) — with prepacking on
        (``CONVNET_PREPACK=1``, which :func:`convnet.runtime.tune` sets), else none; kept until the
        graph changes."""
        if not (prepack_enabled() and self.fuse):
            return {}
        return self._graph_plan("folds", plan_folds)

    def relu_fusion(self) -> dict[str, str]:
        """``{BN node: ReLU node}`` that :meth:`forward` runs as one pass
        (:func:`convnet.graph.plan_relu_fusion`; none when :attr:`fuse` is False); kept until the graph
        changes."""
        return self._graph_plan("relu fusion", plan_relu_fusion) if self.fuse else {}

    def _graph_plan(self, kind: str, plan):
        key = (kind, self.output_name)
        made = self._plans.get(key)
        if made is None:
            made = self._plans[key] = plan(self._nodes.values(), self.output_name)
        return made

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
        """Check every shape and create every layer's parameters from one generator, as arrays
        of :attr:`xp`.

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
            layer.build(list(ins) if node.multi_input else ins[0], rng=rng, xp=self.xp)
        self._built_for = shapes[INPUT]
        if self.input_shape is None:
            self.input_shape = shapes[INPUT]
        return self

    def to(self, device) -> Net:
        """Move every parameter, gradient and state buffer to ``device`` — a name (``"cpu"``,
        ``"gpu"``, ``"cuda"``; :func:`convnet.device.resolve_device`) or an array module
        (``numpy``, ``cupy``) — and create later ones there; caches are dropped.  Returns the net.
        Optimizer slots follow their parameters at the next step."""
        xp = resolve_device(device)
        for layer in self.layers:
            layer.to(xp)
        self.xp = xp
        self._out_shape = None
        return self

    def check_device(self) -> None:
        """Refuse (ConfigError) a net holding arrays of two devices, naming the first layer off
        :attr:`xp`'s device (:func:`convnet.device.check_net`)."""
        check_net(self)

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
                yield NamedParam(f"{node.name}.{key}", p, layer.grads.get(key), layer)

    def named_state(self) -> Iterator[tuple[str, object]]:
        """Yield ``(qualified_name, buffer)`` for non-trained buffers (BatchNorm running stats)."""
        for node in self._nodes.values():
            for key, v in node.layer.state.items():
                yield f"{node.name}.{key}", v

    def num_params(self, input_shape=None) -> int:
        """Number of trainable values; computed from shapes alone when the net is not built."""
        if self.built and input_shape is None:
            return int(sum(p.size for _, p, _ in self.named_parameters(trainable_only=False)))
        shapes = self.shapes(input_shape)
        return sum(node.layer.cost([shapes[i] for i in node.inputs], shapes[node.name]).params
                   for node in self._nodes.values())

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

        Fused (unless :attr:`fuse` is False, and never with an ``observer``, which is shown every
        node's own output): a ReLU after a BN that nothing else reads runs inside the BN's passes
        (:meth:`relu_fusion`; the same numbers to the bit); and at inference (``train=False,
        keep_cache=False``, prepacking on) a BN after a CONV that nothing else reads is folded into
        its weights and bias (:meth:`folds`; the output differs by float32 rounding only).

        In place: a layer that can (``layer.inplace``: ReLU, ADD) is let write its output into
        an input that nothing else reads — the output of a node read by this node alone, whose
        layer keeps no reference to it (``layer.output_private``: CONV, BN, FC, ADD, ...), and
        not the caller's ``x`` nor the net's output — as PyTorch's ``ReLU(inplace=True)``, and
        the result is the same to the bit (:meth:`ownership` says which).  It saves an
        activation-sized array and its page faults per such node.  Never with an ``observer``
        (it may keep the arrays it is shown), nor when ``net.inplace`` is False.
        """
        xshape = getattr(x, "shape", None)
        if xshape is None or len(xshape) < 2:
            raise ShapeError(f"Net.forward: `x` must be a batch (N, *input_shape); received {type(x).__name__} of shape {xshape}.")
        if self.xp is not np or type(x) is not np.ndarray:  # an input on another device than the parameters
            check_input(x, self.xp)
        if self._built_for != tuple(xshape[1:]):
            self.build(tuple(xshape[1:]))
        remaining = {k: len(v) for k, v in self.consumers().items()}
        out_name = self.output_name
        remaining[out_name] += 1  # the caller
        acts = {INPUT: x}
        del x
        plan = self.ownership() if observer is None else Ownership()
        folds = self.folds() if not (train or keep_cache or observer) else {}
        fused = {}
        if observer is None:
            folded = set(folds.values())
            fused = {bn: r for bn, r in self.relu_fusion().items() if bn not in folded}
        self._fused_relus = frozenset(fused.values()) if keep_cache else frozenset()
        for node in self._nodes.values():
            ins = [acts[i] for i in node.inputs]
            kw = {}
            if node.layer.inplace and plan.private:
                free = plan.free_inputs(node)
                kw["inplace"] = free if node.multi_input else free[0]
            if node.name in folds:  # CONV and the BN after it as one convolution
                y = node.layer.forward_folded(ins[0], self._nodes[folds[node.name]].layer)
            elif node.name in fused:  # BN and the ReLU after it in one pass
                y = node.layer.forward(ins[0], train=train, keep_cache=keep_cache, relu=True)
            elif node.inputs[0] in folds or node.inputs[0] in fused:  # run by the node before: pass it on
                y = ins[0]
                node.layer.clear_cache()
            else:
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
        (it came from a layer with ``grad_private``, or is a sum; never ``dloss``).  Both
        follow :meth:`ownership`.
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
        plan = self.ownership(input_grad=input_grad)
        grads = {self.output_name: dloss}
        del dloss
        fused_relus = self._fused_relus
        for node in reversed(self.nodes):
            dy = grads.pop(node.name, None)
            if dy is None:
                node.layer.clear_cache()
                continue
            if node.name in fused_relus:  # the BN before it takes the ReLU's output gradient
                grads[node.inputs[0]] = dy
                continue
            if node.name in plan.skip_dx:
                node.layer.backward(dy, need_dx=False)
                continue
            if node.name in plan.grad_inplace:
                dx = node.layer.backward(dy, inplace=True)
            else:
                dx = node.layer.backward(dy)
            del dy
            dxs = dx if node.multi_input else [dx]
            del dx
            for slot, (i, d) in enumerate(zip(node.inputs, dxs)):
                how = plan.sums.get((node.name, slot))
                if how is None:  # the first gradient sent to i
                    grads[i] = d
                elif how == SUM_INTO_HELD:  # a fan-out: sum into whichever of the two no one else holds
                    grads[i] += d
                elif how == SUM_INTO_NEW:
                    d += grads[i]
                    grads[i] = d
                else:
                    grads[i] = grads[i] + d
            d = dxs = None
        self._out_shape = None
        return grads.pop(INPUT, None)

    def clear_cache(self) -> None:
        """Drop every layer's cache, and this thread's reused op scratch buffers
        (:func:`convnet.ops.scratch.release`)."""
        for layer in self.layers:
            layer.clear_cache()
        self._out_shape = None
        scratch.release()

    def __getstate__(self) -> dict:
        """For copy and pickle: the array module by its name (a module itself does not pickle),
        and no kept plans."""
        state = dict(self.__dict__, _plans={})
        if isinstance(self.xp, types.ModuleType):
            state["xp"] = self.xp.__name__
        return state

    def __setstate__(self, state: dict) -> None:
        # a net pickled before these existed
        state = {"xp": "numpy", "_plans": {}, "fuse": True, "_fused_relus": frozenset(), **state}
        if isinstance(state["xp"], str):
            state["xp"] = importlib.import_module(state["xp"])
        self.__dict__.update(state)

    def __repr__(self) -> str:
        head = f"Net({self.name!r}" if self.name else "Net("
        return f"{head}{', ' if self.name else ''}{len(self._nodes)} nodes, output={self.output_name!r})"
