"""The fully connected (FC) layer as a matrix product.

Shapes: ``x (N, D)``, ``w (D, K)``, ``b (K,)`` → ``y (N, K)``, ``y = x @ w + b``.
Backward: ``dx = dy @ wᵀ``, ``dw = xᵀ @ dy``, ``db = Σ_n dy``.

A layer that receives an image volume flattens it first in NHWC order
(``x.reshape(N, H·W·C)``), which is what makes the FC→CONV conversion of the
notes a plain reshape of ``w`` to ``(H, W, C, K)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from .checks import check_grad_shape, check_matrix, check_same_dtype


@dataclass
class DenseCache:
    x: object
    w: object
    has_bias: bool


def dense_forward(x, w, b=None):
    check_matrix(x, "dense")
    check_same_dtype("dense", x, w=w, b=b)
    if w.ndim != 2 or w.shape[0] != x.shape[1]:
        raise ShapeError(
            f"dense: `w` must have shape ({x.shape[1]}, K) for x of shape {tuple(x.shape)}; received shape {tuple(w.shape)}."
        )
    if b is not None and tuple(b.shape) != (w.shape[1],):
        raise ShapeError(f"dense: `b` must have shape ({w.shape[1]},); received shape {tuple(b.shape)}.")
    y = x @ w
    if b is not None:
        y += b
    return y, DenseCache(x, w, b is not None)


def dense_backward(dy, cache: DenseCache, *, need_dx=True):
    """Returns ``(dx, dw, db)``; ``db`` is None without a bias, ``dx`` None when not needed."""
    x, w = cache.x, cache.w
    check_grad_shape(dy, (x.shape[0], w.shape[1]), "dense_backward")
    return (dy @ w.T if need_dx else None), x.T @ dy, (dy.sum(axis=0) if cache.has_bias else None)
