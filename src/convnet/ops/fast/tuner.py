"""Time the convolution algorithms of a layer shape on this machine and remember the winner.

For each shape, every algorithm that applies (:func:`convnet.ops.fast.conv_plan` accepts it as a
requested algorithm; ``smallmap`` only on output maps of at most 64 pixels, where its per-pixel GEMMs
can pay) runs a **forward and backward pass** (``dx`` and ``dw``: training, the costlier use; a plan
decides both passes, so the winner serves inference too) on random data: one untimed warm-up
(compiles the kernels, fills the reused buffers), then ``repeats`` timed runs, of which the
minimum counts.  A candidate whose warm-up takes more than :data:`GIVE_UP` times the best so far is
not repeated.  The cost model's choice stays unless another beats it by :data:`MARGIN` (timing noise
must not flip a choice) — twice: once in that pass and again when the two are timed alternately
(:data:`CONFIRM` rounds), since a machine's speed drifts between one candidate's runs and the next's.  Winners go to the cache (:mod:`convnet.ops.fast.tuning`) with every
time; results of the op do not change beyond the algorithm's own rounding: only which algorithm
runs does.

``convnet tune MODEL`` calls :func:`tune_shapes`; a ResNet-20 at batch 8-64 takes a few seconds.
Under ``CONVNET_TUNE=auto`` :func:`conv_plan` calls :func:`tune_first_use` for a shape the cache
lacks (this module registers it with :mod:`~convnet.ops.fast.tuning` when imported, which
:mod:`convnet.ops.fast` does).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from ..conv import ALGORITHMS, DEFAULT_WORKSPACE_BYTES
from . import tuning
from .conv import conv2d_backward, forward_for_backward
from .plan import choose_algorithm, clear_plans, conv_plan

#: timed runs a candidate (after one warm-up); the minimum counts
REPEATS = 3
#: a candidate this many times slower than the best at warm-up is not repeated
GIVE_UP = 4.0
#: another algorithm replaces the cost model's choice only when it is this much faster
MARGIN = 0.05
#: alternate runs of the cost model's choice and a challenger that beat it, before it may replace it
CONFIRM = 3
#: smallmap is timed only on output maps of at most this many pixels
SMALLMAP_MAX_PIXELS = 64


@dataclass(frozen=True)
class Tuned:
    """One timed layer shape."""

    key: str  # the cache's shape key
    layers: tuple  # names of the layers with this shape
    x_shape: tuple
    w_shape: tuple
    stride: tuple
    cost_model: str  # the cost model's choice
    algorithm: str  # the winner
    times_ms: dict  # algorithm -> best forward+backward time in milliseconds

    def entry(self) -> dict:
        return {"algorithm": self.algorithm, "cost_model": self.cost_model, "times_ms": self.times_ms,
                "pass": "forward+backward"}


def candidates(x_shape, w_shape, dtype, **kw) -> list[str]:
    """The algorithms that apply to this shape (and that the tuner times)."""
    out = []
    for a in ALGORITHMS:
        if a == "auto":
            continue
        try:
            plan = conv_plan(x_shape, w_shape, dtype, algorithm=a, **kw)
        except ConfigError:
            continue
        ho, wo = plan.geom.out_hw
        if a == "smallmap" and ho * wo > SMALLMAP_MAX_PIXELS:
            continue
        out.append(a)
    return out


def _time_once(plan, x, w, b, dy) -> float:
    start = time.perf_counter()
    y, cache = forward_for_backward(plan, x, w, b)  # as a training step runs it
    conv2d_backward(dy, cache)
    del y, cache
    return time.perf_counter() - start


def tune_shape(x_shape, w_shape, dtype=np.float32, *, stride=1, padding=0, dilation=1, groups=1, fit="error",
               workspace_bytes=DEFAULT_WORKSPACE_BYTES, repeats: int = REPEATS, seed: int = 0):
    """``(cost model's choice, winner, {algorithm: ms})`` for one shape (nothing is stored)."""
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, fit=fit,
              workspace_bytes=workspace_bytes)
    dtype = np.dtype(dtype)
    model = conv_plan(x_shape, w_shape, dtype, algorithm="im2col", **kw)  # the geometry (im2col always applies)
    from_model = choose_algorithm(model.geom, x_shape[3], w_shape[3], groups, n=x_shape[0])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[:3]))).astype(dtype)
    b = rng.standard_normal(w_shape[3]).astype(dtype)
    dy = rng.standard_normal((x_shape[0], *model.geom.out_hw, w_shape[3])).astype(dtype)
    order = [from_model] + [a for a in candidates(x_shape, w_shape, dtype, **kw) if a != from_model]
    times: dict = {}
    for a in order:
        plan = conv_plan(x_shape, w_shape, dtype, algorithm=a, **kw)
        warm = _time_once(plan, x, w, b, dy)
        best = min(times.values(), default=None)
        if best is not None and warm > GIVE_UP * best / 1e3:
            times[a] = warm * 1e3
            continue
        times[a] = 1e3 * min(_time_once(plan, x, w, b, dy) for _ in range(max(1, repeats)))
    winner = min(times, key=times.get)
    if times[winner] > (1 - MARGIN) * times[from_model]:
        winner = from_model
    elif not _confirmed(winner, from_model, x_shape, w_shape, dtype, kw, x, w, b, dy):
        winner = from_model
    return from_model, winner, {a: round(t, 3) for a, t in times.items()}


def _confirmed(winner, from_model, x_shape, w_shape, dtype, kw, x, w, b, dy) -> bool:
    """True when ``winner`` still beats the cost model's choice by :data:`MARGIN` with the two timed
    alternately, :data:`CONFIRM` runs each (minimum of each)."""
    plans = {a: conv_plan(x_shape, w_shape, dtype, algorithm=a, **kw) for a in (from_model, winner)}
    best = {a: float("inf") for a in plans}
    for _ in range(CONFIRM):
        for a, plan in plans.items():
            best[a] = min(best[a], _time_once(plan, x, w, b, dy))
    return best[winner] <= (1 - MARGIN) * best[from_model]



def tune_shapes(shapes, dtype=np.float32, *, repeats: int = REPEATS, save: bool = True, progress=None) -> list:
    """Time every distinct shape of ``shapes`` — ``(layer name, x_shape, w_shape, conv kwargs)`` each,
    the kwargs :func:`conv_plan`'s (stride, padding, dilation, groups, fit, workspace_bytes) — and
    return one :class:`Tuned` per shape; ``save``: merge the winners into the cache file and forget
    the kept plans, so the next ``conv_plan`` reads them.  ``progress(i, total)``: called before each."""
    dtype = np.dtype(dtype)
    groups: dict = {}
    for name, x_shape, w_shape, kw in shapes:
        plan = conv_plan(x_shape, w_shape, dtype, algorithm="im2col", **kw)
        key = tuning.shape_key(x_shape, w_shape, dtype, plan.geom, plan.groups, plan.compiled)
        if key in groups:
            groups[key][0].append(name)
        else:
            groups[key] = ([name], tuple(x_shape), tuple(w_shape), kw, plan.geom.stride)
    out = []
    for i, (key, (names, x_shape, w_shape, kw, stride)) in enumerate(groups.items()):
        if progress is not None:
            progress(i, len(groups))
        model, winner, times = tune_shape(x_shape, w_shape, dtype, repeats=repeats, **kw)
        out.append(Tuned(key, tuple(names), x_shape, w_shape, tuple(stride), model, winner, times))
    if save and out:
        tuning.store({t.key: t.entry() for t in out})
        clear_plans()
    return out


_store_warned = False


def tune_first_use(x_shape, w_shape, dtype, kwargs) -> str:
    """``CONVNET_TUNE=auto``: time a shape the cache lacks, save its winner, return it.  A cache that
    cannot be written is reported once (a warning); the winner is still used in this process."""
    global _store_warned
    dtype = np.dtype(dtype)
    model, winner, times = tune_shape(x_shape, w_shape, dtype, **kwargs)
    plan = conv_plan(x_shape, w_shape, dtype, algorithm="im2col", **kwargs)
    key = tuning.shape_key(x_shape, w_shape, dtype, plan.geom, plan.groups, plan.compiled)
    entry = Tuned(key, (), tuple(x_shape), tuple(w_shape), tuple(plan.geom.stride), model, winner, times).entry()
    try:
        tuning.store({key: entry})
    except OSError as exc:
        if not _store_warned:
            _store_warned = True
            warnings.warn(f"Cannot save the tuning cache {tuning.cache_path()} ({exc.strerror or exc}); "
                          f"timed shapes are kept for this process only.", RuntimeWarning, stacklevel=2)
    return winner


tuning.register_first_use(tune_first_use)
