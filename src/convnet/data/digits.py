"""The embedded default data set: scikit-learn's 8×8 handwritten digits.

``sklearn.datasets.load_digits`` ships the UCI "Optical Recognition of
Handwritten Digits" test set inside the package: 1797 grey images 8×8, values
0..16, ten classes.  No download.

Returned as NHWC float32 ``(N, 8, 8, 1)`` in [0, 1] (``value / 16``) with
int64 labels; split with :func:`~convnet.data.dataset.holdout_split` (within
each digit, every 5th image in file order is test): 1442 train, 355 test.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset, holdout_split

__all__ = ["load_digits"]


def load_digits() -> tuple[Dataset, Dataset]:
    """``(train, test)`` Datasets of the 8×8 digits."""
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0))[..., None]
    y = np.asarray(bunch.target, dtype=np.int64)
    full = Dataset(x, y, tuple(str(c) for c in range(10)), "digits", "sklearn.datasets.load_digits")
    return holdout_split(full, k=5)
