"""Batch normalization in two passes each way, sums in float64.

NumPy's batch norm makes six passes over the activation forward (shifted copy, two
GEMV sums, a square, scale, shift) and eight backward.  Here forward is one pass for
the channel sums and one for ``y = (x - mean)·a + beta``; backward one pass for ``Σdy``
and ``Σdy·(x - mean)`` and one for ``dx = a·dy + (x - mean)·b + c``.  Per-channel sums are
accumulated in float64 (the NumPy version's float32 GEMV sums lose digits over
N·H·W = 65 536 values; both agree with the float64 reference within float32 rounding).
"""
from __future__ import annotations

import numpy as np

from . import compiled


@compiled
def _shifted_sums(x2, shift):  # pragma: no cover - compiled
    m, c = x2.shape
    s1 = np.zeros(c)
    s2 = np.zeros(c)
    for r in range(m):
        for ch in range(c):
            d = np.float64(x2[r, ch]) - shift[ch]
            s1[ch] += d
            s2[ch] += d * d
    return s1, s2


@compiled
def _column_sum(x2):  # pragma: no cover - compiled
    m, c = x2.shape
    s = np.zeros(c)
    for r in range(m):
        for ch in range(c):
            s[ch] += x2[r, ch]
    return s


@compiled
def _grad_sums(dy2, x2, mean):  # pragma: no cover - compiled
    m, c = x2.shape
    sdy = np.zeros(c)
    sdyx = np.zeros(c)
    for r in range(m):
        for ch in range(c):
            g = np.float64(dy2[r, ch])
            sdy[ch] += g
            sdyx[ch] += g * (np.float64(x2[r, ch]) - mean[ch])
    return sdy, sdyx


@compiled
def _affine(x2, mu, a, b, y2):  # pragma: no cover - compiled
    m, c = x2.shape
    for r in range(m):
        for ch in range(c):
            y2[r, ch] = (x2[r, ch] - mu[ch]) * a[ch] + b[ch]


@compiled
def _affine2(dy2, x2, mu, a, b, c0, dx2):  # pragma: no cover - compiled
    m, c = x2.shape
    for r in range(m):
        for ch in range(c):
            dx2[r, ch] = dy2[r, ch] * a[ch] + (x2[r, ch] - mu[ch]) * b[ch] + c0[ch]


def channel_stats(x2):
    """Per-column ``(mean, biased variance)`` of an ``(M, C)`` matrix, in float64.

    The sums are taken around the first row (a per-channel shift) so that a large mean
    does not cancel the variance away.
    """
    x2 = np.ascontiguousarray(x2)
    m = x2.shape[0]
    shift = x2[0].astype(np.float64)
    s1, s2 = _shifted_sums(x2, shift)
    mean_d = s1 / m
    return mean_d + shift, np.maximum(s2 / m - mean_d * mean_d, 0.0)


def channel_sum(x2):
    """``Σ x`` per column of an ``(M, C)`` matrix, in float64 (a convolution's bias gradient)."""
    return _column_sum(np.ascontiguousarray(x2))


def grad_sums(dy2, x2, mean):
    """``(Σ dy, Σ dy · (x - mean))`` per column of two ``(M, C)`` matrices, in float64."""
    return _grad_sums(np.ascontiguousarray(dy2), np.ascontiguousarray(x2), np.asarray(mean, dtype=np.float64))


def affine(x, mu, a, b):
    """``(x - mu) · a + b`` with per-channel (last axis) coefficients, a new array.

    Centring before scaling keeps float32 exact where ``x · a`` and ``mu · a`` would be
    large and nearly equal (a large mean, a small spread).
    """
    x = np.ascontiguousarray(x)
    c, dt = x.shape[-1], x.dtype
    y = np.empty(x.shape, dtype=dt)
    _affine(x.reshape(-1, c), *(np.asarray(v).astype(dt) for v in (mu, a, b)), y.reshape(-1, c))
    return y


def affine2(dy, x, mu, a, b, c0):
    """``dy · a + (x - mu) · b + c0`` with per-channel (last axis) coefficients, a new array."""
    dy, x = np.ascontiguousarray(dy), np.ascontiguousarray(x)
    c, dt = x.shape[-1], dy.dtype
    dx = np.empty(dy.shape, dtype=dt)
    _affine2(dy.reshape(-1, c), x.reshape(-1, c), *(np.asarray(v).astype(dt) for v in (mu, a, b, c0)), dx.reshape(-1, c))
    return dx
