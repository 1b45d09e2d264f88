"""Batch normalization in two passes each way, sums in float64.

NumPy's batch norm makes six passes over the activation forward (shifted copy, two
GEMV sums, a square, scale, shift) and eight backward.  Here forward is one pass for
the channel sums and one for ``y = (x - mean)·a + beta``; backward one pass for ``Σdy``
and ``Σdy·(x - mean)`` and one for ``dx = a·dy + (x - mean)·b + c``.  Per-channel sums are
accumulated in float64 (the NumPy version's float32 GEMV sums lose digits over
N·H·W = 65 536 values; both agree with the float64 reference within float32 rounding).
Large arrays are split by rows over two threads (:mod:`.parallel`); the sums of each half are
added afterwards, in the same order every call.

With a ReLU after the batch norm (``relu=True``, ``y`` given) the same passes apply it: forward
writes ``max(·, 0)``, backward takes ``dy`` where ``y > 0`` and 0 elsewhere — the ReLU kernels'
expressions (:mod:`.relu`), so the numbers are those of the two layers run apart, to the bit.
"""
from __future__ import annotations

import numpy as np

from . import compiled, parallel


@compiled
def _shifted_sums(x2, shift, s1, s2, r0, r1):  # pragma: no cover - compiled
    # rows r0 .. r1 as a slice, looped from 0: a loop from r0 would keep numba's negative-index
    # check on every access and stay scalar
    x2 = x2[r0:r1]
    m, c = x2.shape
    for r in range(m):
        for ch in range(c):
            d = np.float64(x2[r, ch]) - shift[ch]
            s1[ch] += d
            s2[ch] += d * d


@compiled
def _column_sum(x2, s, r0, r1):  # pragma: no cover - compiled
    x2 = x2[r0:r1]
    m, c = x2.shape
    for r in range(m):
        for ch in range(c):
            s[ch] += x2[r, ch]


@compiled
def _grad_sums(dy2, x2, mean, sdy, sdyx, r0, r1):  # pragma: no cover - compiled
    dy2, x2 = dy2[r0:r1], x2[r0:r1]
    m, c = x2.shape
    for r in range(m):
        for ch in range(c):
            g = np.float64(dy2[r, ch])
            sdy[ch] += g
            sdyx[ch] += g * (np.float64(x2[r, ch]) - mean[ch])


@compiled
def _grad_sums_relu(dy2, x2, y2, mean, sdy, sdyx, r0, r1):  # pragma: no cover - compiled
    dy2, x2, y2 = dy2[r0:r1], x2[r0:r1], y2[r0:r1]
    m, c = x2.shape
    zero = np.zeros(1, dtype=dy2.dtype)[0]
    for r in range(m):
        for ch in range(c):
            g = np.float64((dy2[r, ch] if y2[r, ch] > zero else zero) + zero)
            sdy[ch] += g
            sdyx[ch] += g * (np.float64(x2[r, ch]) - mean[ch])


@compiled
def _affine(x2, mu, a, b, y2, r0, r1):  # pragma: no cover - compiled
    x2, y2 = x2[r0:r1], y2[r0:r1]
    m, c = x2.shape
    for r in range(m):
        for ch in range(c):
            y2[r, ch] = (x2[r, ch] - mu[ch]) * a[ch] + b[ch]


@compiled
def _affine_relu(x2, mu, a, b, y2, r0, r1):  # pragma: no cover - compiled
    x2, y2 = x2[r0:r1], y2[r0:r1]
    m, c = x2.shape
    zero = np.zeros(1, dtype=y2.dtype)[0]
    for r in range(m):
        for ch in range(c):
            v = (x2[r, ch] - mu[ch]) * a[ch] + b[ch]
            y2[r, ch] = (zero if v < zero else v) + zero


@compiled
def _affine2(dy2, x2, mu, a, b, c0, dx2, r0, r1):  # pragma: no cover - compiled
    dy2, x2, dx2 = dy2[r0:r1], x2[r0:r1], dx2[r0:r1]
    m, c = x2.shape
    for r in range(m):
        for ch in range(c):
            dx2[r, ch] = dy2[r, ch] * a[ch] + (x2[r, ch] - mu[ch]) * b[ch] + c0[ch]


@compiled
def _affine2_relu(dy2, x2, y2, mu, a, b, c0, dx2, r0, r1):  # pragma: no cover - compiled
    dy2, x2, y2, dx2 = dy2[r0:r1], x2[r0:r1], y2[r0:r1], dx2[r0:r1]
    m, c = x2.shape
    zero = np.zeros(1, dtype=dx2.dtype)[0]
    for r in range(m):
        for ch in range(c):
            g = (dy2[r, ch] if y2[r, ch] > zero else zero) + zero
            dx2[r, ch] = g * a[ch] + (x2[r, ch] - mu[ch]) * b[ch] + c0[ch]


def _summed_over_rows(fn, m: int, size: int, c: int, count: int, *args) -> list:
    """``count`` float64 per-column sums of ``fn(*args, *sums, r0, r1)`` over rows ``0 .. m``: each
    half of a split into sums of its own, then added (the same order every call)."""
    split = size >= parallel.SPLIT_MIN_VALUES and parallel.splits(m)
    parts = [[np.zeros(c) for _ in range(count)] for _ in range(2 if split else 1)]
    if not split:
        fn(*args, *parts[0], 0, m)
        return parts[0]
    half = m // 2
    parallel.halves(lambda r0, r1: fn(*args, *parts[0 if r0 < half else 1], r0, r1), m)
    return [first + second for first, second in zip(*parts)]


def channel_stats(x2):
    """Per-column ``(mean, biased variance)`` of an ``(M, C)`` matrix, in float64.

    The sums are taken around the first row (a per-channel shift) so that a large mean
    does not cancel the variance away.
    """
    x2 = np.ascontiguousarray(x2)
    m = x2.shape[0]
    shift = x2[0].astype(np.float64)
    s1, s2 = _summed_over_rows(_shifted_sums, m, x2.size, x2.shape[1], 2, x2, shift)
    mean_d = s1 / m
    return mean_d + shift, np.maximum(s2 / m - mean_d * mean_d, 0.0)


def channel_sum(x2):
    """``Σ x`` per column of an ``(M, C)`` matrix, in float64 (a convolution's bias gradient)."""
    x2 = np.ascontiguousarray(x2)
    return _summed_over_rows(_column_sum, x2.shape[0], x2.size, x2.shape[1], 1, x2)[0]


def grad_sums(dy2, x2, mean, y2=None):
    """``(Σ dy, Σ dy · (x - mean))`` per column of two ``(M, C)`` matrices, in float64; with ``y2``
    (a ReLU's output after the batch norm) ``dy`` counts only where ``y2 > 0``."""
    dy2, x2 = np.ascontiguousarray(dy2), np.ascontiguousarray(x2)
    mean = np.asarray(mean, dtype=np.float64)
    if y2 is None:
        return tuple(_summed_over_rows(_grad_sums, x2.shape[0], x2.size, x2.shape[1], 2, dy2, x2, mean))
    return tuple(_summed_over_rows(_grad_sums_relu, x2.shape[0], x2.size, x2.shape[1], 2, dy2, x2,
                                   np.ascontiguousarray(y2), mean))


def affine(x, mu, a, b, *, relu: bool = False):
    """``(x - mu) · a + b`` with per-channel (last axis) coefficients, a new array; ``relu``: its
    ``max(·, 0)``.

    Centring before scaling keeps float32 exact where ``x · a`` and ``mu · a`` would be
    large and nearly equal (a large mean, a small spread).
    """
    x = np.ascontiguousarray(x)
    c, dt = x.shape[-1], x.dtype
    y = np.empty(x.shape, dtype=dt)
    parallel.halves_if_large(_affine_relu if relu else _affine, x.size // c, x.size, x.reshape(-1, c),
                             *(np.asarray(v).astype(dt) for v in (mu, a, b)),
                             y.reshape(-1, c))
    return y


def affine2(dy, x, mu, a, b, c0, y=None):
    """``dy · a + (x - mu) · b + c0`` with per-channel (last axis) coefficients, a new array; with
    ``y`` (a ReLU's output) ``dy`` counts only where ``y > 0``."""
    dy, x = np.ascontiguousarray(dy), np.ascontiguousarray(x)
    c, dt = x.shape[-1], dy.dtype
    dx = np.empty(dy.shape, dtype=dt)
    coefficients = (np.asarray(v).astype(dt) for v in (mu, a, b, c0))
    if y is None:
        parallel.halves_if_large(_affine2, x.size // c, x.size, dy.reshape(-1, c), x.reshape(-1, c),
                                 *coefficients, dx.reshape(-1, c))
    else:
        parallel.halves_if_large(_affine2_relu, x.size // c, x.size, dy.reshape(-1, c), x.reshape(-1, c),
                                 np.ascontiguousarray(y).reshape(-1, c), *coefficients, dx.reshape(-1, c))
    return dx
