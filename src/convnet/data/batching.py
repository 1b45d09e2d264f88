"""Mini-batches with a seeded shuffle whose order and cursor can be saved and restored exactly.

The order of epoch ``e`` is a pure function of ``(seed, e)``::

    order(e) = default_rng(SeedSequence([seed, e])).permutation(n)     (shuffle=True)
    order(e) = arange(n)                                                (shuffle=False)

so the iterator's whole state is ``(epoch, cursor)`` — the position inside
``order(epoch)`` — plus the settings it was built with, all JSON-serialisable::

    it = BatchIterator(train, batch_size=64, seed=0)
    for batch in it.epoch_batches():     # the rest of the current epoch; then epoch += 1
        ... batch.x (B, H, W, C), batch.y (B,), batch.indices (B,)
    state = it.state_dict()              # {"epoch": 3, "cursor": 640, "seed": 0, "n": ..., ...}
    it2 = BatchIterator(train, batch_size=64, seed=0); it2.load_state_dict(state)   # same next batch

With ``drop_last=True`` a final batch smaller than ``batch_size`` is skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

from ..errors import CheckpointError, ConfigError
from .dataset import Dataset

__all__ = ["Batch", "BatchIterator", "epoch_order"]


def epoch_order(n: int, *, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of ``epoch``: a permutation of ``range(n)`` determined by ``(seed, epoch)``."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch)]))
    return rng.permutation(n).astype(np.int64)


@dataclass
class Batch:
    """One mini-batch: ``x`` (B, H, W, C), ``y`` (B,), the dataset ``indices``, and where it came from."""

    x: np.ndarray
    y: np.ndarray
    indices: np.ndarray
    epoch: int
    index: int  # batch number within the epoch, from 0


def _int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"Argument `{name}` must be an integer >= {low}; received {value!r}.")
    return int(value)


class BatchIterator:
    """Seeded, resumable mini-batches over a Dataset (see the module docstring)."""

    def __init__(self, dataset: Dataset, *, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        if not isinstance(dataset, Dataset):
            raise ConfigError(f"Argument `dataset` must be a Dataset; received {type(dataset).__name__}.")
        self.dataset = dataset
        self.n = len(dataset)
        self.batch_size = _int("batch_size", batch_size, 1)
        self.seed = _int("seed", seed, 0)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if self.n == 0 or (self.drop_last and self.batch_size > self.n):
            raise ConfigError(f"Dataset {dataset.name!r} has {self.n} samples, too few for batch_size="
                              f"{self.batch_size}{' with drop_last=True' if self.drop_last else ''}.")
        self.epoch = 0
        self.cursor = 0
        self._order_epoch = -1
        self._order = None

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def order(self, epoch: int | None = None) -> np.ndarray:
        """The sample order of ``epoch`` (default: the current one)."""
        e = self.epoch if epoch is None else int(epoch)
        if e != self._order_epoch:
            self._order = epoch_order(self.n, seed=self.seed, epoch=e, shuffle=self.shuffle)
            self._order_epoch = e
        return self._order

    def _epoch_done(self) -> bool:
        left = self.n - self.cursor
        return left <= 0 or (self.drop_last and left < self.batch_size)

    def next_batch(self) -> Batch:
        """The next batch, moving to the next epoch when the current one is used up."""
        if self._epoch_done():
            self.epoch += 1
            self.cursor = 0
        idx = self.order()[self.cursor:self.cursor + self.batch_size]
        batch = Batch(self.dataset.x[idx], self.dataset.y[idx], idx, self.epoch, self.cursor // self.batch_size)
        self.cursor += len(idx)
        if self._epoch_done():
            self.epoch += 1
            self.cursor = 0
        return batch

    def epoch_batches(self) -> Iterator[Batch]:
        """The remaining batches of the current epoch (all of them at cursor 0)."""
        start = self.epoch
        while self.epoch == start:
            yield self.next_batch()

    def __iter__(self):
        return self.epoch_batches()

    def state_dict(self) -> dict:
        """JSON-serialisable ``{"epoch", "cursor", "seed", "n", "batch_size", "shuffle", "drop_last"}``."""
        return {"epoch": self.epoch, "cursor": self.cursor, "seed": self.seed, "n": self.n,
                "batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last}

    def load_state_dict(self, state: Mapping) -> None:
        """Resume at ``state``'s epoch and cursor; CheckpointError if it was made with other settings."""
        if not isinstance(state, Mapping):
            raise CheckpointError(f"Batch-iterator state must be a dict; received {type(state).__name__}.")
        mine = self.state_dict()
        missing = sorted(set(mine) - set(state))
        if missing:
            raise CheckpointError(f"Batch-iterator state lacks {', '.join(missing)}.")
        for key in ("seed", "n", "batch_size", "shuffle", "drop_last"):
            if state[key] != mine[key]:
                raise CheckpointError(f"Batch-iterator state was saved with {key}={state[key]!r} but this iterator "
                                      f"has {key}={mine[key]!r}; the data order would not be the same.")
        epoch, cursor = state["epoch"], state["cursor"]
        if (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0 or isinstance(cursor, bool)
                or not isinstance(cursor, int) or not 0 <= cursor <= self.n or cursor % self.batch_size):
            raise CheckpointError(f"Batch-iterator state has epoch={epoch!r}, cursor={cursor!r}; expected "
                                  f"integers with 0 <= cursor <= {self.n}, a multiple of {self.batch_size}.")
        self.epoch, self.cursor = epoch, cursor
