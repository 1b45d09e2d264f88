"""``ReLU`` and ``Dropout``: shape-preserving, parameter-free layers."""
from __future__ import annotations

import numpy as np

from ..ops.activations import (
    check_rate,
    dropout_backward,
    dropout_forward,
    relu,
    relu_backward,
    relu_forward,
)
from .base import Layer


class ReLU(Layer):
    """``max(0, x)`` elementwise; the notes' RELU layer (no hyperparameters)."""

    kind = "RELU"
    inplace = True
    grad_private = True

    def forward(self, x, *, train=False, keep_cache=True, inplace=False):
        """``inplace=True``: write the result into ``x`` (the net passes it when no one else reads
        ``x``: the BN or ADD output before a ReLU, as PyTorch's ``ReLU(inplace=True)``)."""
        self._check_input(x)
        if not keep_cache:
            self._cache = None
            return relu(x, inplace=inplace)
        y, self._cache = relu_forward(x, inplace=inplace)
        return y

    def backward(self, dy, *, inplace=False):
        """``inplace=True``: the gradient is written into ``dy`` (the net passes it when no one
        else holds ``dy``)."""
        return relu_backward(dy, self._take_cache(), inplace=inplace)


class Dropout(Layer):
    """Inverted dropout: ``Dropout(rate=0.5, *, seed=0)``; the identity at inference.

    The mask comes from the layer's own ``numpy.random.Generator`` seeded with
    ``seed``; save and restore ``layer.rng.bit_generator.state`` to resume exactly.
    """

    kind = "DROPOUT"

    def __init__(self, rate=0.5, *, seed=0, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.rate = check_rate(rate)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        y, cache = dropout_forward(x, rate=self.rate, rng=self.rng, train=train)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return dropout_backward(dy, self._take_cache())
