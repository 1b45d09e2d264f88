"""The in-memory dataset and the ways to split one.

A :class:`Dataset` holds ``x`` — images, NHWC float32, usually in [0, 1] —
``y`` — int64 labels in ``[0, len(classes))`` — the class names and a name.

Splits:

* :func:`holdout_split` — the fixed train/test split used for sources that ship
  one set (digits, a flat image folder, an npz without ``x_test``): within each
  class, counting in file order, every ``k``-th sample (``j % k == k - 1``) is
  test.  Stratified, deterministic, independent of any RNG; ``k = 5`` gives 20%.
* :func:`train_val_split` — a seeded, stratified random validation split of a
  training set.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, DTypeError, ShapeError

__all__ = ["Dataset", "holdout_split", "train_val_split"]


@dataclass(eq=False)
class Dataset:
    """Images and labels: ``x`` (N, H, W, C) float32, ``y`` (N,) int64, ``classes``, ``name``."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    name: str = "dataset"
    source: str | None = field(default=None, repr=False)

    def __post_init__(self):
        x, y = self.x, self.y
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise ShapeError(f"Dataset {self.name!r}: `x` must be an (N, H, W, C) array; received "
                             f"{getattr(x, 'shape', type(x).__name__)}.")
        if x.dtype != np.float32:
            raise DTypeError(f"Dataset {self.name!r}: `x` must be float32; received dtype {x.dtype}.")
        if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype != np.int64:
            raise DTypeError(f"Dataset {self.name!r}: `y` must be a 1-d int64 array; received "
                             f"{getattr(y, 'shape', None)} {getattr(y, 'dtype', type(y).__name__)}.")
        if len(y) != len(x):
            raise ShapeError(f"Dataset {self.name!r}: {len(x)} images but {len(y)} labels.")
        self.classes = tuple(str(c) for c in self.classes)
        if not self.classes:
            raise ConfigError(f"Dataset {self.name!r}: `classes` must not be empty.")
        if len(y) and (y.min() < 0 or y.max() >= len(self.classes)):
            raise ConfigError(f"Dataset {self.name!r}: labels must lie in [0, {len(self.classes)}); received "
                              f"[{y.min()}, {y.max()}].")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``."""
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices, *, name: str | None = None) -> "Dataset":
        """A new Dataset of the samples at ``indices`` (copies)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset(self.x[idx], self.y[idx], self.classes, name or self.name, self.source)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
                f"classes={len(self.classes)})")


def holdout_split(ds: Dataset, *, k: int = 5) -> tuple[Dataset, Dataset]:
    """Deterministic stratified split: within each class, every ``k``-th sample (file order) is test."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"Argument `k` must be an integer >= 2; received {k!r}.")
    test = np.zeros(len(ds), dtype=bool)
    for c in np.unique(ds.y):
        members = np.flatnonzero(ds.y == c)
        test[members[k - 1::k]] = True
    return (ds.subset(np.flatnonzero(~test), name=f"{ds.name}/train"),
            ds.subset(np.flatnonzero(test), name=f"{ds.name}/test"))


def train_val_split(ds: Dataset, *, val_fraction: float = 0.1, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Seeded stratified split into ``(train, val)``; each class gives ``round(val_fraction * n_c)`` samples.

    Sample order within each part follows the original order.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"Argument `val_fraction` must be a number in (0, 1); received {val_fraction!r}.")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    val = np.zeros(len(ds), dtype=bool)
    for c in np.unique(ds.y):
        members = np.flatnonzero(ds.y == c)
        n_val = int(round(val_fraction * len(members)))
        val[rng.permutation(members)[:n_val]] = True
    if not val.any() or val.all():
        raise ConfigError(f"Argument `val_fraction`={val_fraction} leaves an empty part of dataset {ds.name!r} "
                          f"with {len(ds)} samples.")
    return (ds.subset(np.flatnonzero(~val), name=f"{ds.name}/train"),
            ds.subset(np.flatnonzero(val), name=f"{ds.name}/val"))
