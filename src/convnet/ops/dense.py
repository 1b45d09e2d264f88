"""The fully connected (FC) layer as a matrix product.

Shapes: ``x (N, D)``, ``w (D, K)``, ``b (K,)`` → ``y (N, K)``, ``y = x @ w + b``.
Backward: ``dx = dy @ wᵀ``, ``dw = xᵀ @ dy``, ``db = Σ_n dy``.

ONNX's Gemm scales both terms: ``y = alpha · x @ w + beta · b`` (``alpha = beta = 1`` by
default, which costs nothing extra); then ``dx = alpha · dy @ wᵀ``, ``dw = alpha · xᵀ @ dy``,
``db = beta · Σ_n dy``.

A layer that receives an image volume flattens it first in NHWC order
(``x.reshape(N, H·W·C)``), which is what makes the FC→CONV conversion of the
notes a plain reshape of ``w`` to ``(H, W, C, K)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import math

from ..errors import ConfigError, ShapeError
from .checks import check_grad_shape, check_matrix, check_same_dtype


@dataclass
class DenseCache:
    x: object
    w: object
    has_bias: bool
    alpha: float = 1.0
    beta: float = 1.0


def check_scale(value, name: str) -> float:
    """``alpha``/``beta``: a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"Argument `{name}` must be a finite number; received {name}={value!r}.")
    return float(value)


def dense_forward(x, w, b=None, *, alpha=1.0, beta=1.0):
    """``y = alpha · x @ w + beta · b``: returns ``(y, cache)`` (the cache keeps ``x`` and ``w``)."""
    alpha, beta = check_scale(alpha, "alpha"), check_scale(beta, "beta")
    check_matrix(x, "dense")
    check_same_dtype("dense", x, w=w, b=b)
    if w.ndim != 2 or w.shape[0] != x.shape[1]:
        raise ShapeError(
            f"dense: `w` must have shape ({x.shape[1]}, K) for x of shape {tuple(x.shape)}; received shape {tuple(w.shape)}."
        )
    if b is not None and tuple(b.shape) != (w.shape[1],):
        raise ShapeError(f"dense: `b` must have shape ({w.shape[1]},); received shape {tuple(b.shape)}.")
    y = x @ w
    if alpha != 1.0:
        y *= x.dtype.type(alpha)
    if b is not None:
        y += b if beta == 1.0 else b * b.dtype.type(beta)
    return y, DenseCache(x, w, b is not None, alpha, beta)


def dense_backward(dy, cache: DenseCache, *, need_dx=True):
    """Returns ``(dx, dw, db)``; ``db`` is None without a bias, ``dx`` None when not needed."""
    x, w = cache.x, cache.w
    check_grad_shape(dy, (x.shape[0], w.shape[1]), "dense_backward")
    db = None
    if cache.has_bias:
        db = dy.sum(axis=0)
        if cache.beta != 1.0:
            db *= db.dtype.type(cache.beta)
    if cache.alpha != 1.0:
        dy = dy * dy.dtype.type(cache.alpha)  # the gradient of the product x @ w
    return (dy @ w.T if need_dx else None), x.T @ dy, db
