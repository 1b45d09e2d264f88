"""Input checks shared by the ops: one sentence per failure, naming the argument."""
from __future__ import annotations

from ..backend import check_float_array
from ..errors import DTypeError, ShapeError


def check_nhwc(x, op: str, name: str = "x"):
    """``x`` must be a float ``(N, H, W, C)`` batch with every size positive."""
    check_float_array(x, name)
    if x.ndim != 4:
        raise ShapeError(
            f"{op}: `{name}` must be an NHWC batch of rank 4 (N, H, W, C); received shape {tuple(x.shape)}."
        )
    if min(x.shape) < 1:
        raise ShapeError(f"{op}: `{name}` must have every size positive; received shape {tuple(x.shape)}.")
    return x


def check_matrix(x, op: str, name: str = "x"):
    check_float_array(x, name)
    if x.ndim != 2 or min(x.shape) < 1:
        raise ShapeError(f"{op}: `{name}` must be a non-empty (N, D) matrix; received shape {tuple(x.shape)}.")
    return x


def check_same_dtype(op: str, x, **others):
    for name, arr in others.items():
        if arr is None:
            continue
        check_float_array(arr, name)
        if arr.dtype != x.dtype:
            raise DTypeError(
                f"{op}: `{name}` has dtype {arr.dtype} but `x` has dtype {x.dtype}; expected both the same "
                f"(cast one with .astype)."
            )


def check_grad_shape(dy, expected, op: str):
    check_float_array(dy, "dy")
    if tuple(dy.shape) != tuple(expected):
        raise ShapeError(
            f"{op}: upstream gradient `dy` must have the forward output's shape {tuple(expected)}; "
            f"received shape {tuple(dy.shape)}."
        )
    return dy
