"""Synchronised batch norm: every BatchNorm layer normalises with the statistics of the global batch.

With the batch split over N ranks, each rank's BatchNorm would see only its slice and so
normalise with other statistics than one process with the whole batch (and update the running
statistics differently on each rank).  :func:`sync_batchnorm` gives each BatchNorm layer a
``stats_reduce`` callable that sums over the ranks: one small Allreduce of ``2·C + 1`` float64
values per layer forward and of ``2·C`` backward (:mod:`convnet.ops.norm` says what is summed).
``sync_batchnorm(net, world, enabled=False)`` switches it off: each rank then uses its own
slice's statistics (faster, and a different computation: the result depends on N).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_numpy
from ..layers.norm import BatchNorm

__all__ = ["sync_batchnorm", "average_state"]


def sync_batchnorm(net, world, *, enabled: bool = True) -> int:
    """Point every BatchNorm of ``net`` at ``world``'s sum (or at nothing when ``enabled`` is False
    or there is one rank); returns the number of layers synchronised."""
    use = enabled and world.active
    count = 0
    for layer in net.layers:
        if isinstance(layer, BatchNorm):
            layer.stats_reduce = _Reducer(world, layer.name) if use else None
            count += use
    return count


class _Reducer:
    """``reduce(a) -> Σ_ranks a`` for one layer (a float64 copy, summed in place)."""

    def __init__(self, world, name):
        self.world, self.what = world, f"batch-norm statistics of {name}"

    def __call__(self, values):
        buf = np.array(values, dtype=np.float64)
        return self.world.allreduce_(buf, what=self.what)


def average_state(net, world) -> None:
    """Replace every state buffer (running statistics) by its mean over the ranks: with
    unsynchronised batch norm each rank's running statistics drift apart; the mean is saved."""
    if not world.active:
        return
    for _, v in net.named_state():
        buf = np.asarray(to_numpy(v), dtype=np.float64).copy()  # a device buffer: through the host
        world.allreduce_(buf, what="running statistics")
        mean = buf / world.size
        xp = get_array_module(v)
        v[...] = mean if xp is np else xp.asarray(mean)
    for layer in net.layers:  # edited in place: what was made from them (a folded CONV) is stale
        if layer.state:
            layer.weights_changed()
