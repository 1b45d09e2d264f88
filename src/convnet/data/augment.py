"""Seeded data augmentation on NHWC batches: random crop with zero padding, horizontal flip.

``random_crop(x, padding=p, rng=rng)``: pad H and W by ``p`` zeros on each side,
then cut a random ``H × W`` window per image (offsets uniform in ``[0, 2p]``).
``random_hflip(x, p=0.5, rng=rng)``: mirror each image left-right with
probability ``p`` (``x[:, :, ::-1, :]``).

:class:`Augmenter` draws its randomness from ``SeedSequence([seed, epoch,
batch_index])``, a pure function of where the batch sits in training, so a
resumed run augments exactly as an uninterrupted one, with no state to save.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError

__all__ = ["random_crop", "random_hflip", "Augmenter"]


def _check_batch(x):
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ShapeError(f"Augmentation needs an (N, H, W, C) batch; received {getattr(x, 'shape', type(x).__name__)}.")


def random_crop(x: np.ndarray, *, padding: int, rng: np.random.Generator) -> np.ndarray:
    """``(N, H, W, C) -> (N, H, W, C)``: zero-pad by ``padding`` then crop a random window per image."""
    _check_batch(x)
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ConfigError(f"Argument `padding` must be an integer >= 0; received {padding!r}.")
    if padding == 0:
        return x.copy()
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    dy = rng.integers(0, 2 * padding + 1, size=n)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    out = np.empty_like(x)
    for i in range(n):
        out[i] = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


def random_hflip(x: np.ndarray, *, p: float = 0.5, rng: np.random.Generator) -> np.ndarray:
    """``(N, H, W, C) -> (N, H, W, C)``: each image mirrored along W with probability ``p``."""
    _check_batch(x)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ConfigError(f"Argument `p` must be a probability in [0, 1]; received {p!r}.")
    flip = rng.random(len(x)) < p
    out = x.copy()
    out[flip] = x[flip, :, ::-1, :]
    return out


class Augmenter:
    """Crop-and-flip augmentation keyed by ``(seed, epoch, batch_index)``: ``aug(x, epoch=e, batch_index=i)``."""

    def __init__(self, *, crop_padding: int = 0, hflip: bool = False, seed: int = 0):
        if isinstance(crop_padding, bool) or not isinstance(crop_padding, int) or crop_padding < 0:
            raise ConfigError(f"Argument `crop_padding` must be an integer >= 0; received {crop_padding!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"Argument `seed` must be an integer >= 0; received {seed!r}.")
        self.crop_padding, self.hflip, self.seed = crop_padding, bool(hflip), seed

    def rng(self, *, epoch: int, batch_index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch), int(batch_index)]))

    def __call__(self, x: np.ndarray, *, epoch: int, batch_index: int, start: int = 0,
                 total: int | None = None) -> np.ndarray:
        """Augment ``x``: the whole batch, or — with ``total`` — the images at positions
        ``start .. start + len(x)`` of a batch of ``total`` (data-parallel ranks each hold one
        slice): the random draws are made for all ``total`` images and the slice's are used, so
        every image is augmented as it would be in the whole batch."""
        rng = self.rng(epoch=epoch, batch_index=batch_index)
        if total is None or (start == 0 and total == len(x)):
            if self.crop_padding:
                x = random_crop(x, padding=self.crop_padding, rng=rng)
            if self.hflip:
                x = random_hflip(x, rng=rng)
            return x
        _check_batch(x)
        part = slice(start, start + len(x))
        if self.crop_padding:  # the same draws, in the same order, as random_crop on the whole batch
            p, (_, h, w, _) = self.crop_padding, x.shape
            dy = rng.integers(0, 2 * p + 1, size=total)[part]
            dx = rng.integers(0, 2 * p + 1, size=total)[part]
            padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
            x = np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(len(x))]) if len(x) else x.copy()
        if self.hflip:  # as random_hflip
            flip = (rng.random(total) < 0.5)[part]
            out = x.copy()
            out[flip] = x[flip, :, ::-1, :]
            x = out
        return x

    def config(self) -> dict:
        return {"crop_padding": self.crop_padding, "hflip": self.hflip, "seed": self.seed}

    def __repr__(self):
        return f"Augmenter(crop_padding={self.crop_padding}, hflip={self.hflip}, seed={self.seed})"
