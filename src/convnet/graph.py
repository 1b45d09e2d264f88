"""The graph's vocabulary: the input's name, a node, who reads what, and who owns which array.

Everything that walks a net's graph speaks these words: :class:`~convnet.net.Net` (which
runs it) and :mod:`convnet.analysis` (which replays it from shapes).  This module imports
nothing of convnet, so both import it and neither imports the other for it.

* :data:`INPUT` — the reserved name of the net's input.
* :class:`Node` — a layer and the names of the nodes it reads.
* :func:`consumers` — who reads each node.
* :func:`plan_ownership` → :class:`Ownership` — which arrays a forward or backward pass may
  overwrite: the one statement of the in-place rules, which ``Net.forward`` and
  ``Net.backward`` follow and :mod:`convnet.analysis.memory` replays.
* :func:`plan_folds` — which per-channel affine maps at inference (BN) an inference pass folds
  into the CONV before them; :func:`plan_relu_fusion` — which ReLUs run inside the BN before them.

What the plan reads of a layer is the :class:`LayerFlags` protocol (class attributes of
:class:`convnet.layers.base.Layer`): a custom layer that sets none of them is never handed an
array to overwrite, and its output is never overwritten.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

INPUT = "input"

#: how a gradient joins the one an earlier-run consumer already sent to the same node
#: (backward walks the nodes back to front): added into the array held so far, which no one
#: else holds; the held array added into the new one, which no one else holds; or both summed
#: into a new array (either may be held elsewhere: ``Add`` hands one ``dy`` to every input)
SUM_INTO_HELD, SUM_INTO_NEW, SUM_NEW_ARRAY = "into held", "into new", "new array"


class LayerFlags(Protocol):
    """What the graph reads of a layer (see :class:`convnet.layers.base.Layer` for each)."""

    multi_input: bool  # forward takes a list of arrays and backward returns a list
    inplace: bool  # forward takes ``inplace=`` and may write its output into an input
    output_private: bool  # its output is a new array its cache does not hold
    grad_private: bool  # backward returns a new array (no one else holds it)
    can_skip_dx: bool  # backward(dy, need_dx=False) skips the input gradient
    affine_at_inference: bool  # forward(train=False) is x · scale + shift per channel
    absorbs_affine: bool  # forward_folded(x, affine) runs it and such a map after it as one
    applies_relu: bool  # forward(..., relu=True) applies a ReLU to its output; backward takes its gradient
    is_relu: bool  # the plain ReLU

    def inplace_target(self, free: list[bool]) -> int | None: ...


@dataclass(frozen=True)
class Node:
    """One node of the graph: a layer and the names of the nodes it reads."""

    name: str
    layer: LayerFlags  # a convnet.layers.Layer
    inputs: tuple[str, ...]

    @property
    def multi_input(self) -> bool:
        return bool(getattr(self.layer, "multi_input", False))


def consumers(nodes: Iterable[Node]) -> dict[str, list[str]]:
    """Map each node name (and :data:`INPUT`) to the names of the nodes that read it, in order
    (a node that reads a name twice is listed twice)."""
    nodes = list(nodes)
    out: dict[str, list[str]] = {INPUT: [], **{n.name: [] for n in nodes}}
    for node in nodes:
        for i in node.inputs:
            out[i].append(node.name)
    return out


@dataclass(frozen=True)
class Ownership:
    """Which arrays of one pass may be overwritten, and by whom (see :func:`plan_ownership`).

    Forward:

    * ``private`` — nodes whose output one later node may overwrite: read by exactly one
      node, once, from a layer with ``output_private``, and not the net's output (never the
      caller's batch, which is no node).
    * ``writes_into`` — in-place node → the input whose array its output is written into
      (``layer.inplace_target`` of the inputs in ``private``: a ReLU into its input, ADD into
      the first of its first two).

    Backward:

    * ``grad_inplace`` — in-place nodes whose backward overwrites the gradient they receive
      (it is an array no one else holds: the new input gradient of one layer with
      ``grad_private``, or a sum; never ``dloss``).
    * ``sums`` — ``(node, input position)`` → how that input gradient joins the one already
      sent to the same node (:data:`SUM_INTO_HELD`, :data:`SUM_INTO_NEW`,
      :data:`SUM_NEW_ARRAY`); absent where it is the first to arrive.
    * ``skip_dx`` — nodes whose input gradient is not computed (``input_grad=False``: a layer
      with ``can_skip_dx`` reading only the net's input).
    """

    private: frozenset = frozenset()
    writes_into: Mapping[str, str] = field(default_factory=dict)
    grad_inplace: frozenset = frozenset()
    sums: Mapping[tuple[str, int], str] = field(default_factory=dict)
    skip_dx: frozenset = frozenset()

    def free_inputs(self, node: Node) -> list[bool]:
        """One bool per input of ``node``: whether forward may overwrite that array."""
        return [i in self.private for i in node.inputs]


def plan_ownership(nodes: Iterable[Node], output: str, *, inplace: bool = True,
                   input_grad: bool = True) -> Ownership:
    """The :class:`Ownership` of a pass over ``nodes`` (in topological order) whose output is
    node ``output``.  ``inplace=False``: nothing is overwritten (every sum is a new array).
    ``input_grad=False``: the backward pass of training, which skips the gradient with respect
    to the images where a layer can.

    Results are the same to the bit either way (float addition commutes; a ReLU written in place
    computes what it would into a new array); what changes is how many arrays exist."""
    nodes = list(nodes)
    readers = consumers(nodes)
    private = frozenset(
        n.name for n in nodes
        if inplace and n.name != output and len(readers[n.name]) == 1 and n.layer.output_private
    )
    writes_into = {}
    for node in nodes:
        if node.layer.inplace and private:
            j = node.layer.inplace_target([i in private for i in node.inputs])
            if j is not None:
                writes_into[node.name] = node.inputs[j]

    skip_dx = frozenset(n.name for n in nodes
                        if not input_grad and n.inputs == (INPUT,) and n.layer.can_skip_dx)
    arrived, owned = {output}, set()  # gradients sent so far; those that no one else holds
    grad_inplace, sums = set(), {}
    for node in reversed(nodes):
        if node.name not in arrived or node.name in skip_dx:
            continue
        single = not node.multi_input
        if inplace and node.layer.inplace and single and node.name in owned:
            grad_inplace.add(node.name)
        dx_private = node.layer.grad_private and single
        for slot, i in enumerate(node.inputs):
            if i not in arrived:
                arrived.add(i)
                if dx_private:
                    owned.add(i)
                continue
            if inplace and i in owned:
                sums[(node.name, slot)] = SUM_INTO_HELD
            elif inplace and dx_private:
                sums[(node.name, slot)] = SUM_INTO_NEW
            else:
                sums[(node.name, slot)] = SUM_NEW_ARRAY
            owned.add(i)
    return Ownership(private, writes_into, frozenset(grad_inplace), sums, skip_dx)



def _sole_reader_pairs(nodes: Iterable[Node], output: str, producer: str, reader: str) -> dict[str, str]:
    """``{node: its reader}`` where the node's layer has the flag ``producer``, its one reader's layer
    the flag ``reader`` and one input, and the node is not the net's output."""
    nodes = list(nodes)
    readers = consumers(nodes)
    by_name = {n.name: n for n in nodes}
    pairs = {}
    for node in nodes:
        if not getattr(node.layer, reader, False) or len(node.inputs) != 1:
            continue
        src = by_name.get(node.inputs[0])
        if (src is not None and getattr(src.layer, producer, False) and src.name != output
                and readers[src.name] == [node.name]):
            pairs[src.name] = node.name
    return pairs


def plan_folds(nodes: Iterable[Node], output: str) -> dict[str, str]:
    """``{conv node: affine node}``: the per-channel affine maps at inference (a layer with
    ``affine_at_inference``: BN) whose one input is the output of a layer with ``absorbs_affine``
    (CONV) that nothing else reads and that is not the net's output.  An inference pass
    (:meth:`convnet.net.Net.predict` with prepacking on) runs each pair as one convolution with the
    map folded into its weights and bias — ONNX Runtime's and PyTorch's Conv-BN fusion."""
    return _sole_reader_pairs(nodes, output, "absorbs_affine", "affine_at_inference")


def plan_relu_fusion(nodes: Iterable[Node], output: str) -> dict[str, str]:
    """``{BN node: ReLU node}``: the ReLUs (``is_relu``) whose one input is the output of a layer
    with ``applies_relu`` (BN) that nothing else reads and that is not the net's output.  A pass
    runs each pair as one — BN's forward writes ``max(·, 0)``, its backward takes the ReLU's output
    gradient — with the same numbers to the bit and two passes over the activation fewer each way."""
    return _sole_reader_pairs(nodes, output, "applies_relu", "is_relu")
