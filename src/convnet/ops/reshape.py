"""Ops that move values without arithmetic: flatten and channel shuffle.

**Flatten** ``(N, H, W, C) -> (N, H·W·C)`` in NHWC order (a view when the input is contiguous);
backward reshapes ``dy`` back (a view of ``dy``).  Dense flattens the same way (Caffe's
InnerProduct), so ``Flatten -> Dense`` and ``Dense`` alone are the same net.

**Channel shuffle** (ShuffleNet, Zhang et al. 2018) with ``g`` groups permutes the last axis so
that each group of the next grouped convolution sees channels of every group of the previous
one::

    (..., C) -> reshape (..., g, C/g) -> swap the last two axes -> reshape (..., C)
    y[..., i·g + j] = x[..., j·(C/g) + i]

— PyTorch's ``nn.ChannelShuffle(g)`` on the channels of NCHW, and the ONNX
``Reshape -> Transpose -> Reshape`` that exporters write for it.  Its backward is the inverse
permutation, a shuffle with ``C/g`` groups.
"""
from __future__ import annotations

from ..backend import check_float_array, get_array_module
from ..errors import ConfigError, ShapeError
from .checks import check_grad_shape
from .geometry import is_int


# -- flatten --------------------------------------------------------------------------------
def flatten_forward(x):
    """``(N, ...) -> (N, prod(...))``: returns ``(y, x.shape)`` (``y`` a view when ``x`` is contiguous)."""
    check_float_array(x, "x")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ShapeError(f"flatten: `x` must have a non-empty batch axis; received shape {tuple(x.shape)}.")
    return x.reshape(x.shape[0], -1), tuple(x.shape)


def flatten_backward(dy, cache):
    """``dy`` reshaped to the input's shape (a view of ``dy``)."""
    n = 1
    for d in cache[1:]:
        n *= d
    check_grad_shape(dy, (cache[0], n), "flatten_backward")
    return dy.reshape(cache)


# -- channel shuffle ------------------------------------------------------------------------
def check_groups(groups, channels: int | None = None, op: str = "channel_shuffle") -> int:
    """``groups``: a positive int dividing ``channels`` (when given)."""
    if not is_int(groups) or groups < 1:
        raise ConfigError(f"{op}: `groups` must be a positive integer; received groups={groups!r}.")
    if channels is not None and channels % groups:
        raise ShapeError(f"{op}: the C={channels} channels must be divisible by groups={groups}.")
    return int(groups)


def _shuffle(x, groups: int):
    xp = get_array_module(x)
    c = x.shape[-1]
    lead = x.shape[:-1]
    y = x.reshape(*lead, groups, c // groups).swapaxes(-1, -2)
    return xp.ascontiguousarray(y).reshape(*lead, c)


def channel_shuffle_forward(x, *, groups):
    """Shuffle the last axis of ``x`` (any rank ``>= 2``) with ``groups`` groups: returns
    ``(y, groups)`` — ``y[..., i·g + j] = x[..., j·(C/g) + i]``, a new array."""
    check_float_array(x, "x")
    if x.ndim < 2:
        raise ShapeError(f"channel_shuffle: `x` must be a batch (N, ..., C); received shape {tuple(x.shape)}.")
    g = check_groups(groups, x.shape[-1])
    return _shuffle(x, g), g


def channel_shuffle_backward(dy, cache):
    """The inverse permutation: a shuffle of ``dy`` with ``C/g`` groups."""
    check_float_array(dy, "dy")
    g = cache
    c = dy.shape[-1] if dy.ndim else 0
    if dy.ndim < 2 or c % g:
        raise ShapeError(f"channel_shuffle_backward: upstream gradient `dy` must have a channel axis divisible by "
                         f"groups={g}; received shape {tuple(dy.shape)}.")
    return _shuffle(dy, c // g)
