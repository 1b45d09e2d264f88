"""``FractionalMaxPool2D``: pooling regions drawn at random on every training pass (Graham 2014)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, ShapeError
from ..ops.geometry import as_pair
from ..ops.pool_fractional import (
    fractional_max_pool2d_backward,
    fractional_max_pool2d_forward,
    fractional_output_size,
)
from .accounting import Footprint, LayerCost, Window
from .base import Layer

TEST_MODES = ("fixed", "average")


class FractionalMaxPool2D(Layer):
    """Fractional max pooling.

    ``FractionalMaxPool2D(*, output_size=None, ratio=None, pool_size=2, seed=0,
    test_mode="fixed", test_grids=4)``: give the output size ``(Ho, Wo)`` or a
    ratio in (0, 1) (``Ho = floor(H · ratio)``).  In training the region offsets
    ``u`` are drawn per image and channel from a generator seeded with ``seed``.
    At inference, ``test_mode="fixed"`` uses one fixed grid (``u = 0.5``) and
    ``"average"`` averages the outputs of ``test_grids`` grids drawn from a
    generator seeded with ``seed`` (the same grids every call), as the paper suggests.
    """

    kind = "FRACPOOL"
    name_prefix = "pool"

    def __init__(self, *, output_size=None, ratio=None, pool_size=2, seed=0, test_mode="fixed", test_grids=4, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if (output_size is None) == (ratio is None):
            raise ConfigError("FractionalMaxPool2D: give exactly one of `output_size` or `ratio`.")
        if test_mode not in TEST_MODES:
            raise ConfigError(f"Argument `test_mode` must be one of {TEST_MODES}; received {test_mode!r}.")
        if isinstance(test_grids, bool) or not isinstance(test_grids, int) or test_grids < 1:
            raise ConfigError(f"Argument `test_grids` must be a positive integer; received {test_grids!r}.")
        self.output_size = None if output_size is None else as_pair(output_size, "output_size")
        self.ratio = ratio
        self.pool_size = as_pair(pool_size, "pool_size")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.test_mode = test_mode
        self.test_grids = test_grids

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} expects a per-sample input (H, W, C); received shape {tuple(input_shape)}.")
        hw = fractional_output_size(input_shape[:2], output_size=self.output_size, ratio=self.ratio, pool_size=self.pool_size, layer=self.label)
        return (*hw, input_shape[2])

    def _pool(self, x, samples):
        out = self.output_shape(x.shape[1:])[:2]
        return fractional_max_pool2d_forward(x, samples=samples, output_size=out, pool_size=self.pool_size, layer=self.label)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        n, c = x.shape[0], x.shape[3]
        if train:
            y, cache = self._pool(x, self.rng.random((n, c, 2)))
        elif self.test_mode == "fixed":
            y, cache = self._pool(x, np.full((n, c, 2), 0.5))
        else:
            grid_rng = np.random.default_rng(self.seed)
            outs = [self._pool(x, np.broadcast_to(grid_rng.random((1, 1, 2)), (n, c, 2))) for _ in range(self.test_grids)]
            y = sum(o[0] for o in outs) / self.test_grids
            cache = [o[1] for o in outs]
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        cache = self._take_cache()
        if isinstance(cache, list):
            return sum(fractional_max_pool2d_backward(dy, c) for c in cache) / len(cache)
        return fractional_max_pool2d_backward(dy, cache)

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """As max pooling; for the receptive field a window of the pool size moved by about
        ``H/Ho`` (the regions' stride, rounded)."""
        (h, w, _), (ho, wo, _) = input_shapes[0], output_shape
        kh, kw = self.pool_size
        n = math.prod(output_shape)
        stride = (max(1, round(h / ho)), max(1, round(w / wo)))
        return LayerCost(0, 0, 0, (kh * kw - 1) * n, n, Window((kh, kw), stride))

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Training: an int64 argmax per output kept; index and value candidates while searching;
        backward accumulates ``dx`` in float64."""
        o = batch * math.prod(output_shape)
        return Footprint(cache_bytes=8 * o if train else 0, forward_scratch=o * (3 * 8 + 3 * itemsize),
                         backward_scratch=8 * batch * math.prod(input_shapes[0]))
