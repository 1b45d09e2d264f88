"""ReLU forward and backward, one pass each.

``np.maximum(x, 0)`` measured 4× slower than this loop on NHWC activations, and
``dy * (y > 0)`` makes a bool temporary and a second pass.  NaN passes through the
forward (as in ``np.maximum``); the backward routes ``dy`` where ``y > 0`` and writes 0
elsewhere, whatever ``dy`` holds there (as PyTorch's ``threshold_backward``).
"""
from __future__ import annotations

import numpy as np

from . import compiled


@compiled
def _relu(x, y):  # pragma: no cover - compiled
    zero = np.zeros(1, dtype=y.dtype)[0]
    for i in range(x.size):
        v = x[i]
        y[i] = zero if v < zero else v


@compiled
def _relu_backward(dy, y, dx):  # pragma: no cover - compiled
    # both loads unconditional: a load under the condition becomes a masked load
    zero = np.zeros(1, dtype=dx.dtype)[0]
    for i in range(dy.size):
        g = dy[i]
        dx[i] = g if y[i] > zero else zero


def relu(x):
    """``max(0, x)``, a new array."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _relu(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y):
    """``dy`` where ``y > 0``, else 0; a new array."""
    dy, y = np.ascontiguousarray(dy), np.ascontiguousarray(y)
    dx = np.empty_like(dy)
    _relu_backward(dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx
