"""Which part of a global batch each rank takes: contiguous slices of the same position-based order.

A global batch of ``n`` samples over ``size`` ranks is cut into contiguous slices whose sizes
differ by at most one, the larger ones first::

    shard_sizes(10, 4) == [3, 3, 2, 2];   rank 2 takes positions 6, 7 of the batch

Concatenating the slices in rank order gives the batch back, so anything that is a function
of a sample's position in the global batch (augmentation, dropout masks) is the same on 1 or
N ranks: :class:`ShardedGenerator` draws for the whole batch and keeps the rank's rows.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["shard_sizes", "shard_bounds", "ShardedGenerator"]


def shard_sizes(n: int, size: int) -> list[int]:
    """The number of samples each of ``size`` ranks takes of ``n``: ``n // size``, plus one for the
    first ``n % size`` ranks."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"Argument `size` must be a positive integer (the number of ranks); received {size!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"Argument `n` must be an integer >= 0 (samples in the batch); received {n!r}.")
    q, r = divmod(int(n), size)
    return [q + (1 if k < r else 0) for k in range(size)]


def shard_bounds(n: int, size: int, rank: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s slice of a batch of ``n`` (see :func:`shard_sizes`)."""
    sizes = shard_sizes(n, size)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < size:
        raise ConfigError(f"Argument `rank` must be in [0, {size}); received {rank!r}.")
    start = sum(sizes[:rank])
    return start, start + sizes[rank]


class ShardedGenerator:
    """A stand-in for a NumPy Generator whose ``random(shape)`` draws the rows of the whole
    global batch and returns this rank's slice of them, so a dropout mask (or a fractional
    pooling grid) for a sample depends on its position in the global batch, not on the rank.

    ``rng``: the generator of the step; ``start``, ``total``: this rank's first position and the
    global batch size.  Only ``random`` is offered: it is all the layers draw.
    """

    def __init__(self, rng: np.random.Generator, *, start: int, total: int):
        self.rng, self.start, self.total = rng, int(start), int(total)

    def random(self, shape, dtype=np.float64):
        shape = tuple(shape)
        draw = self.rng.random((self.total, *shape[1:]), dtype=dtype)
        return draw[self.start:self.start + shape[0]]
