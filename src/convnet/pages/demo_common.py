"""What the demo pages share: small integer arrays a learner can multiply by hand, the size
limits that keep a page readable, and geometry errors worded for the command line."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, GeometryError
from ..ops.geometry import as_pair, conv_geometry, is_int

#: the largest input side, depth and filter count a demo draws (every number is written out)
MAX_SIZE, MAX_DEPTH, MAX_FILTERS, MAX_KERNEL = 16, 8, 8, 7


def pair(value, name: str, *, minimum: int = 1, maximum: int | None = None) -> tuple[int, int]:
    """``3`` or ``(3, 2)`` as a (height, width) pair within ``[minimum, maximum]``."""
    h, w = as_pair(value, name, minimum=minimum)
    if maximum is not None and max(h, w) > maximum:
        raise ConfigError(f"Argument `{name}` must be at most {maximum} for a demo page (every number is drawn); "
                          f"received {value!r}.")
    return h, w


def count(value, name: str, maximum: int) -> int:
    """A positive integer no larger than ``maximum``."""
    if not is_int(value) or not 1 <= int(value) <= maximum:
        raise ConfigError(f"Argument `{name}` must be an integer from 1 to {maximum} for a demo page; "
                          f"received {value!r}.")
    return int(value)


def integers(rng, shape, low: int, high: int) -> np.ndarray:
    """Integers in ``[low, high]`` as float64 (exact in the engine and in JavaScript)."""
    return rng.integers(low, high + 1, size=shape).astype(np.float64)


def demo_geometry(size, kernel, *, stride, padding, dilation, layer: str):
    """The convolution geometry, or a GeometryError in the command line's words (no ``fit=``)."""
    try:
        return conv_geometry(size, kernel, stride=stride, padding=padding, dilation=dilation, layer=layer)
    except GeometryError as exc:
        if exc.reason is None:
            raise
        raise GeometryError(f"{exc.reason} Change the stride, padding or size so that the windows tile the input.",
                            reason=exc.reason) from None


def geometry_dict(geom) -> dict:
    """A Geometry2D as plain numbers for the page (height first)."""
    return {"kernel": list(geom.kernel), "stride": list(geom.stride), "dilation": list(geom.dilation),
            "pads": [list(p) for p in geom.pads], "out": list(geom.out_hw),
            "padded": [geom.height.padded_size, geom.width.padded_size]}


def nested(a) -> list:
    """An array as nested lists of Python numbers (integers stay integers)."""
    a = np.asarray(a)
    if a.dtype.kind == "f" and np.all(a == np.round(a)) and np.all(np.abs(a) < 2**53):
        return a.astype(np.int64).tolist()
    return a.tolist()
