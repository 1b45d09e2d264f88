"""Mean / standard-deviation normalisation with statistics from the training set.

``Normalizer.fit(train.x)`` computes, per channel (or over everything with
``per_channel=False``)::

    mean[c] = mean of x[..., c]          std[c] = std of x[..., c]   (population, ddof=0)

and ``normalizer(x) = (x - mean) / std`` (float32, shape kept).  A channel
whose std is below ``1e-8`` is divided by 1 instead.  The statistics are plain
lists in ``state_dict()``, so they go in a checkpoint's JSON metadata.
Fit on the TRAINING set only, then apply the same statistics to validation and
test data.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import CheckpointError, ShapeError

__all__ = ["Normalizer"]


class Normalizer:
    """``(x - mean) / std`` with per-channel statistics fitted on training images (NHWC)."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape or self.mean.size == 0:
            raise ShapeError(f"Normalizer mean and std must be equal-length vectors; received {self.mean.shape} "
                             f"and {self.std.shape}.")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all()) or (self.std < 0).any():
            raise ShapeError("Normalizer mean and std must be finite and std non-negative.")

    @classmethod
    def fit(cls, x: np.ndarray, *, per_channel: bool = True, chunk: int = 4096) -> "Normalizer":
        """Statistics of ``x`` (N, H, W, C), accumulated in float64 over chunks of ``chunk`` images."""
        if not isinstance(x, np.ndarray) or x.ndim != 4 or len(x) == 0:
            raise ShapeError(f"Normalizer.fit needs a non-empty (N, H, W, C) array; received "
                             f"{getattr(x, 'shape', type(x).__name__)}.")
        c = x.shape[-1] if per_channel else 1
        s1, s2, count = np.zeros(c), np.zeros(c), 0
        for i in range(0, len(x), chunk):
            part = x[i:i + chunk].astype(np.float64).reshape(-1, c)
            s1 += part.sum(0)
            count += len(part)
        mean = s1 / count
        for i in range(0, len(x), chunk):
            part = x[i:i + chunk].astype(np.float64).reshape(-1, c) - mean
            s2 += (part * part).sum(0)
        return cls(mean, np.sqrt(s2 / count))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[-1] != self.mean.size and self.mean.size != 1:
            raise ShapeError(f"Normalizer has statistics for {self.mean.size} channels but the images have shape "
                             f"{x.shape}.")
        std = np.where(self.std < 1e-8, 1.0, self.std)
        return ((x - self.mean.astype(np.float32)) / std.astype(np.float32)).astype(np.float32, copy=False)

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, state: Mapping) -> "Normalizer":
        try:
            return cls(state["mean"], state["std"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"Normalizer state must have 'mean' and 'std' lists; {exc}.") from None

    def __repr__(self):
        return f"Normalizer(mean={np.round(self.mean, 4).tolist()}, std={np.round(self.std, 4).tolist()})"
