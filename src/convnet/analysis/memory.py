"""How much memory a net needs, and the largest batch that fits a budget.

The notes name three sources of memory; this module counts each:

1. **Activations** — the intermediate volumes.  Their sum (the notes' "only
   forward!" number, and the summary table's total) counts every array that
   forward makes, once: an in-place ReLU or ADD writes into its input and a
   FLATTEN (or a DROPOUT at inference) is a view of it, so those rows add
   nothing (:func:`output_storage`).  It is a sum, not a requirement: no step
   holds all of them at once.  A training step needs what the layers cache for
   backward (see
   :mod:`convnet.analysis.footprint`: CONV/FC keep references to their inputs,
   RELU its output, BN its input, MAXPOOL one byte of switch per output, DROPOUT one
   byte of mask per element...), plus the gradients flowing back and the
   scratch space of the running layer (im2col columns under the workspace cap).
   The model *replays* the step: it walks the graph forward and backward,
   holding each array exactly as long as :class:`~convnet.net.Net` and the
   layers hold it — which array is written in place, and how gradients are summed,
   it reads from the same plan the net follows (:meth:`Net.ownership
   <convnet.net.Net.ownership>`) — and reports the peak.  Inference (``Net.predict``) keeps no
   caches and frees each activation once its last consumer has run.
2. **Parameters** × (1 + gradient + optimizer slots), with slots per optimizer:
   SGD 0, momentum 1, Nesterov 1, Adagrad 1, RMSProp 1, Adam 2.  (Training
   with momentum therefore costs "3×" the parameter vector, as in the notes.)
   Beside them, the weight transforms layers keep between calls (``prepacked``: a CONV's
   Winograd ``U``, 36/9 = 4× its weights for F(4,3), in inference and for frozen layers;
   :attr:`Footprint.persistent_bytes <convnet.layers.accounting.Footprint.persistent_bytes>`;
   only with ``CONVNET_PREPACK=1``).
3. **Data** — the input batch and its integer labels.

Bytes are 4 per value in float32 and 8 in float64.  Budgets are parsed by
:func:`parse_bytes` ("12GB", "512MiB", "3e9"); like the notes, a KB here is
1024 bytes (KB = KiB, MB = MiB, GB = GiB).

Example::

    >>> model = MemoryModel(net, (224, 224, 3), optimizer="momentum")
    >>> model.estimate(32).total            # bytes for a training step at batch 32
    >>> model.max_batch("12GB")
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from ..backend import resolve_dtype
from ..errors import BudgetError, ConfigError
from ..graph import INPUT, SUM_INTO_HELD, SUM_INTO_NEW
from ..ops import scratch
from .costs import layer_cost
from .footprint import footprint

#: extra arrays per parameter kept by each optimizer (the notes' "step cache")
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2,
          "G": 1024**3, "GB": 1024**3, "GIB": 1024**3, "T": 1024**4, "TB": 1024**4, "TIB": 1024**4}


def parse_bytes(value) -> int:
    """``"12GB" -> 12·1024³``; ints pass through.  Raises ConfigError on anything else."""
    if isinstance(value, bool):
        raise ConfigError(f"A memory budget must be a size such as '12GB' or a number of bytes; received {value!r}.")
    if isinstance(value, (int, np.integer)) and value > 0:
        return int(value)
    if isinstance(value, float) and value > 0 and math.isfinite(value):
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(value)) if isinstance(value, str) else None
    if m is None or m.group(2).upper() not in _UNITS or float(m.group(1)) <= 0:
        raise ConfigError(
            f"A memory budget must be a positive size such as '12GB', '512MB' or a number of bytes; received {value!r}."
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'`` (powers of 1024, as the notes divide)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def optimizer_slots(optimizer: str) -> int:
    key = str(optimizer).lower()
    if key not in OPTIMIZER_SLOTS:
        raise ConfigError(f"Argument `optimizer` must be one of {sorted(OPTIMIZER_SLOTS)}; received {optimizer!r}.")
    return OPTIMIZER_SLOTS[key]


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed by one step at a given batch size (see the module docstring)."""

    batch: int
    dtype: str
    optimizer: str
    train: bool
    #: Σ of the summary table's rows: every array forward makes (the input batch included), each
    #: once — rows written in place or that are views add nothing (:func:`output_storage`)
    activations_forward: int
    #: the most bytes alive at one moment of the step (or of inference) beyond parameters, their
    #: gradients, optimizer state and data: activations still needed (cached for backward, or not yet
    #: consumed), activation gradients, a layer's new weight gradient before it replaces the old one,
    #: and the ops' scratch
    activations_peak: int
    parameters: int
    gradients: int
    optimizer_state: int
    data: int
    #: weight transforms the layers keep between calls (prepacked Winograd filters)
    prepacked: int = 0

    @property
    def total(self) -> int:
        """Peak bytes of the step: activations + parameters (+ prepacked transforms + gradients +
        optimizer state) + data."""
        return (self.activations_peak + self.parameters + self.prepacked + self.gradients + self.optimizer_state
                + self.data)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total"] = self.total
        return d

    def report(self) -> str:
        """A short text block for terminals: each line with what it counts."""
        mode = f"training step, optimizer {self.optimizer}" if self.train else "inference"

        def line(label: str, nbytes: int, meaning: str = "") -> str:
            return f"  {label:<21}{format_bytes(nbytes):>11}" + (f"  {meaning}" if meaning else "")

        lines = [
            f"Memory at batch {self.batch} ({self.dtype}, {mode}):",
            line("layer outputs, summed", self.activations_forward,
                 "the table's total: each output array once (in-place, view, folded and fused rows add none)"),
            line("peak of the step" if self.train else "peak of inference", self.activations_peak,
                 "alive at the worst moment: " + ("activations kept for backward, gradients (a layer's new dW "
                                                  "too), scratch" if self.train
                                                  else "outputs not yet consumed, scratch")),
            line("parameters", self.parameters),
        ]
        if self.prepacked:
            lines.append(line("prepacked weights", self.prepacked,
                              "kept between calls: Winograd's U, at inference CONV weights with the BN "
                              "after them folded in (only with CONVNET_PREPACK=1)"))
        if self.train:
            lines.append(line("parameter gradients", self.gradients))
            lines.append(line("optimizer state", self.optimizer_state))
        lines.append(line("data batch", self.data, "images and labels" if self.train else "images"))
        lines.append(line("total", self.total, "peak + parameters" + (" + prepacked" if self.prepacked else "")
                          + (" + gradients + optimizer state" if self.train else "") + " + data"))
        return "\n".join(lines)


class _Ledger:
    """Reference-counted buffers: what is alive now, and the peak so far.

    ``scratch`` is what the ops' scratch buffers hold (:mod:`convnet.ops.scratch` keeps them
    between calls, up to ``KEEP_BYTES``): an op needing ``s`` bytes of scratch grows them to
    ``max(held, s)``, and they stay held after it — counted at every later moment.
    """

    def __init__(self, keep_bytes: int = 0):
        self.size: dict = {}
        self.refs: dict = {}
        self.live = 0
        self.peak = 0
        self.keep_bytes = keep_bytes
        self.held: dict = {}  # scratch family -> bytes its buffers hold
        self.scratch = 0

    def touch(self, extra: int, scratch: int = 0, kind: str = "") -> None:
        """A moment with ``extra`` bytes of new arrays and an op's ``scratch`` of family ``kind``
        ("" = freed when the op returns; else grown into the held buffers of that family)."""
        if kind and self.keep_bytes and scratch <= self.keep_bytes:
            self.held[kind] = max(self.held.get(kind, 0), scratch)
            self.scratch = min(self.keep_bytes, sum(self.held.values()))
            scratch = 0
        self.peak = max(self.peak, self.live + extra + scratch + self.scratch)

    def alloc(self, key, nbytes: int, refs: int) -> None:
        self.size[key] = nbytes
        self.refs[key] = refs
        self.live += nbytes
        self.peak = max(self.peak, self.live + self.scratch)
        if refs <= 0:
            self.drop(key, 0)

    def hold(self, key, n: int = 1) -> None:
        self.refs[key] += n

    def drop(self, key, n: int = 1) -> None:
        self.refs[key] -= n
        if self.refs[key] <= 0:
            self.live -= self.size.pop(key)
            del self.refs[key]


def _touch_backward(led: "_Ledger", fp, extra: int) -> None:
    """The moments of one layer's backward: ``extra`` new arrays, its temporaries and its scratch —
    in two phases where the temporaries belong to an earlier one (:attr:`Footprint.backward_temp_scratch`)."""
    if fp.backward_temp_scratch is None:
        led.touch(extra + fp.backward_temp, fp.backward_scratch, fp.scratch_kind)
        return
    led.touch(extra + fp.backward_temp, fp.backward_temp_scratch, fp.scratch_kind)
    led.touch(extra, fp.backward_scratch, fp.scratch_kind)


def fused_relus(net, folded=frozenset()) -> set:
    """The ReLU nodes a pass runs inside the BN before them (``net.relu_fusion()``), less those whose
    BN is ``folded`` into a CONV (an inference with prepacking on: the ReLU then runs by itself)."""
    return {relu for bn, relu in net.relu_fusion().items() if bn not in folded}


def output_storage(net, shapes=None) -> dict[str, str]:
    """How :meth:`Net.predict` holds each node's output: ``"new"`` (an array of its own),
    ``"in place"`` (written into an input nothing else reads: ReLU, ADD — ``net.ownership()``),
    ``"view"`` (the input itself or a view of it: FLATTEN, DROPOUT at inference), ``"folded"``
    (a BN run inside the CONV before it — ``net.folds()``, with prepacking on) or ``"fused"`` (a
    ReLU run inside the BN before it, where it is not written in place — ``net.inplace`` False).
    ``"input"`` is ``"new"``."""
    shapes = net.shapes() if shapes is None else shapes
    writes_into = net.ownership().writes_into
    folded = set(net.folds().values())
    fused = fused_relus(net, folded)
    out = {INPUT: "new"}
    for node in net.nodes:
        if node.name in writes_into:
            out[node.name] = "in place"
            continue
        if node.name in folded or node.name in fused:
            out[node.name] = "folded" if node.name in folded else "fused"
            continue
        fp = footprint(node.layer, [shapes[i] for i in node.inputs], shapes[node.name], batch=1, itemsize=4,
                       train=False)
        out[node.name] = "view" if fp.output_is_view else "new"
    return out


class MemoryModel:
    """The memory of ``net`` on ``input_shape`` as a function of the batch size.

    Arguments:
        optimizer: one of ``sgd, momentum, nesterov, adagrad, rmsprop, adam``.
        dtype: float32 (default) or float64.
        train: a training step (True) or inference with :meth:`Net.predict` (False).
    """

    def __init__(self, net, input_shape=None, *, optimizer: str = "sgd", dtype=None, train: bool = True):
        self.net = net
        self.shapes = net.shapes(input_shape)
        self.input_shape = self.shapes[INPUT]
        self.optimizer = str(optimizer).lower()
        self.slots = optimizer_slots(optimizer)
        self.dtype = resolve_dtype(dtype)
        self.itemsize = self.dtype.itemsize
        self.train = bool(train)
        self._param_bytes = {
            n.name: layer_cost(n.layer, [self.shapes[i] for i in n.inputs], self.shapes[n.name]).params * self.itemsize
            for n in net.nodes
        }
        self.num_params = sum(self._param_bytes.values()) // self.itemsize
        self.storage = output_storage(net, self.shapes)

    def _bytes(self, name: str, batch: int) -> int:
        return 0 if name == INPUT else batch * math.prod(self.shapes[name]) * self.itemsize

    def activation_peak(self, batch: int) -> int:
        """Replay forward (and backward when training) and return the peak of live bytes."""
        net, led, item = self.net, _Ledger(scratch.KEEP_BYTES if scratch.enabled() else 0), self.itemsize
        consumers = net.consumers()
        plan = net.ownership()  # what Net.forward and Net.backward overwrite
        folded = set() if self.train else set(net.folds().values())  # BN run inside the CONV before it
        fused = fused_relus(net, folded)  # ReLUs run inside the BN before them
        buf = {INPUT: ("act", INPUT)}
        led.alloc(buf[INPUT], 0, len(consumers[INPUT]) + 1)  # the caller's batch: counted under "data"
        fps = {}
        for node in net.nodes:
            ins = [self.shapes[i] for i in node.inputs]
            fp = footprint(node.layer, ins, self.shapes[node.name], batch=batch, itemsize=item, train=self.train)
            fps[node.name] = fp
            users = len(consumers[node.name]) + (node.name == net.output_name) + fp.keeps_output
            into = plan.writes_into.get(node.name)
            if node.name in folded or node.name in fused:  # the node before made its output
                buf[node.name] = buf[node.inputs[0]]
                led.hold(buf[node.name], users)
            elif into is not None or fp.output_is_view:  # the output is (a view of) an input's buffer
                buf[node.name] = buf[into if into is not None else node.inputs[0]]
                led.touch(fp.forward_temp, fp.forward_scratch, fp.scratch_kind)
                led.hold(buf[node.name], users)
            else:
                buf[node.name] = ("act", node.name)
                led.touch(self._bytes(node.name, batch) + fp.forward_temp, fp.forward_scratch, fp.scratch_kind)
                led.alloc(buf[node.name], self._bytes(node.name, batch), users)
            if fp.cache_bytes:
                led.alloc(("cache", node.name), fp.cache_bytes, 1)
            for i in node.inputs:
                if fp.keeps_input:
                    led.hold(buf[i])
                led.drop(buf[i])
        if not self.train:
            return led.peak
        # backward: the loss gradient arrives; the caller still holds the logits
        grad = {net.output_name: ("grad", net.output_name)}
        led.alloc(grad[net.output_name], self._bytes(net.output_name, batch), 1)
        counter = 0
        for node in reversed(net.nodes):
            fp = fps[node.name]
            g = grad.pop(node.name, None)
            if g is not None:
                if node.name in plan.grad_inplace:
                    dxs = [g]
                    _touch_backward(led, fp, 0)
                    led.hold(g)
                elif fp.dx_is_dy:
                    dxs = [g] * len(node.inputs)
                    _touch_backward(led, fp, 0)
                    led.hold(g, len(node.inputs))
                else:
                    new = sum(self._bytes(i, batch) if i != INPUT else self._input_bytes(batch) for i in node.inputs)
                    # the new parameter gradients exist before the layer drops the old ones
                    _touch_backward(led, fp, new + self._param_bytes[node.name])
                    dxs = []
                    for i in node.inputs:
                        counter += 1
                        key = ("grad", node.name, counter)
                        led.alloc(key, self._bytes(i, batch) if i != INPUT else self._input_bytes(batch), 1)
                        dxs.append(key)
                led.drop(g)
                for slot, (i, d) in enumerate(zip(node.inputs, dxs)):
                    how = plan.sums.get((node.name, slot))  # fan-out: as Net.backward sums
                    if how is None:
                        grad[i] = d
                    elif how == SUM_INTO_HELD:
                        led.drop(d)
                    elif how == SUM_INTO_NEW:
                        led.drop(grad[i])
                        grad[i] = d
                    else:
                        counter += 1
                        key = ("grad", i, counter)
                        led.alloc(key, self._bytes(i, batch) if i != INPUT else self._input_bytes(batch), 1)
                        led.drop(grad[i])
                        led.drop(d)
                        grad[i] = key
            if fp.cache_bytes:
                led.drop(("cache", node.name))
            if fp.keeps_output:
                led.drop(buf[node.name])
            if fp.keeps_input:
                for i in node.inputs:
                    led.drop(buf[i])
        return led.peak

    def prepacked(self, batch: int) -> int:
        """Bytes of the weight transforms the layers keep between calls at ``batch`` (Σ of their
        footprints' ``persistent_bytes``) and, for inference, the folded weights and bias of each
        CONV that runs the BN after it (``net.folds()``; their Winograd transform replaces the
        unfolded one, which the footprint counts)."""
        kept = sum(footprint(n.layer, [self.shapes[i] for i in n.inputs], self.shapes[n.name], batch=batch,
                             itemsize=self.itemsize, train=self.train).persistent_bytes for n in self.net.nodes)
        if not self.train:
            for conv in self.net.folds():
                node = self.net.node(conv)
                cost = layer_cost(node.layer, [self.shapes[i] for i in node.inputs], self.shapes[conv])
                kept += (cost.weights + self.shapes[conv][-1]) * self.itemsize
        return kept

    def _input_bytes(self, batch: int) -> int:
        return batch * math.prod(self.input_shape) * self.itemsize

    def estimate(self, batch: int) -> MemoryEstimate:
        """The :class:`MemoryEstimate` at ``batch`` samples."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ConfigError(f"Argument `batch` must be a positive integer; received {batch!r}.")
        batch = int(batch)
        forward = sum(self._bytes(n.name, batch) for n in self.net.nodes if self.storage[n.name] == "new") \
            + self._input_bytes(batch)
        p = self.num_params * self.itemsize
        return MemoryEstimate(
            batch=batch,
            dtype=str(self.dtype),
            optimizer=self.optimizer if self.train else "none",
            train=self.train,
            activations_forward=forward,
            activations_peak=self.activation_peak(batch),
            parameters=p,
            gradients=p if self.train else 0,
            optimizer_state=p * self.slots if self.train else 0,
            data=self._input_bytes(batch) + (batch * 8 if self.train else 0),
            prepacked=self.prepacked(batch),
        )

    def fits(self, batch: int, budget) -> bool:
        """True when a step at ``batch`` needs no more than ``budget`` (bytes or '12GB')."""
        return self.estimate(batch).total <= parse_bytes(budget)

    def max_batch(self, budget, *, limit: int = 1 << 20) -> int:
        """The largest batch whose step fits ``budget``; BudgetError if not even one sample fits."""
        cap = parse_bytes(budget)
        one = self.estimate(1)
        if one.total > cap:
            raise BudgetError(
                f"Even a batch of 1 needs {format_bytes(one.total)} ({format_bytes(one.parameters)} of parameters, "
                f"{format_bytes(one.activations_peak)} of activations), more than the budget of {format_bytes(cap)}; "
                "expected a larger budget, a smaller input, or a smaller net."
            )
        lo, hi = 1, 2
        while hi <= limit and self.fits(hi, cap):
            lo, hi = hi, hi * 2
        hi = min(hi, limit + 1)
        while hi - lo > 1:  # fits(lo) and not fits(hi)
            mid = (lo + hi) // 2
            if self.fits(mid, cap):
                lo = mid
            else:
                hi = mid
        return lo


def estimate(net, input_shape=None, *, batch: int = 1, optimizer: str = "sgd", dtype=None, train: bool = True) -> MemoryEstimate:
    """Shortcut for ``MemoryModel(net, input_shape, ...).estimate(batch)``."""
    return MemoryModel(net, input_shape, optimizer=optimizer, dtype=dtype, train=train).estimate(batch)
