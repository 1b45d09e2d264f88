"""Classification losses on raw class scores, averaged over the batch.

Shapes: ``scores (N, K)`` float, ``labels (N,)`` integers in ``[0, K)``.

**Softmax cross-entropy**, computed stably from shifted scores
(``s - max(s)``) with log-sum-exp::

    L = (1/N) Σ_n [ log Σ_k exp(s[n, k]) - s[n, y_n] ],    dL/ds = (softmax(s) - onehot(y)) / N

**Multiclass SVM** (Weston-Watkins hinge, the CS231n form) with margin ``delta``::

    L = (1/N) Σ_n Σ_{k ≠ y_n} max(0, s[n, k] - s[n, y_n] + delta)

The probabilities themselves are :func:`convnet.ops.softmax.softmax` (re-exported here as
``softmax``; any axis there).  Each ``*_forward`` returns ``(loss, cache)`` with ``loss`` a Python float;
``*_backward(dloss, cache)`` returns ``dscores``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from ..errors import DTypeError, ShapeError
from .checks import check_matrix
from .softmax import softmax  # noqa: F401  (the class probabilities of scores: softmax over axis -1)


def check_labels(scores, labels, op: str):
    check_matrix(scores, op, "scores")
    xp = get_array_module(scores)
    labels = xp.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise DTypeError(f"{op}: `labels` must be integers; received dtype {labels.dtype}.")
    n, k = scores.shape
    if labels.shape != (n,):
        raise ShapeError(f"{op}: `labels` must have shape ({n},) for scores of shape {tuple(scores.shape)}; received {tuple(labels.shape)}.")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ShapeError(
            f"{op}: `labels` must lie in [0, {k}) for {k} classes; received values from {int(labels.min())} to {int(labels.max())}."
        )
    return labels


@dataclass
class LossCache:
    grad: object  # dL/dscores for dloss = 1


def softmax_cross_entropy_forward(scores, labels):
    labels = check_labels(scores, labels, "softmax_cross_entropy")
    xp = get_array_module(scores)
    n = scores.shape[0]
    z = scores - scores.max(axis=1, keepdims=True)
    log_norm = xp.log(xp.exp(z).sum(axis=1))
    rows = xp.arange(n)
    loss = float((log_norm - z[rows, labels]).mean())
    grad = xp.exp(z - log_norm[:, None])
    grad[rows, labels] -= 1
    grad /= n
    return loss, LossCache(grad)


def softmax_cross_entropy_backward(dloss, cache: LossCache):
    return cache.grad * cache.grad.dtype.type(dloss)


def multiclass_svm_forward(scores, labels, *, delta=1.0):
    labels = check_labels(scores, labels, "multiclass_svm")
    xp = get_array_module(scores)
    n = scores.shape[0]
    rows = xp.arange(n)
    margins = scores - scores[rows, labels][:, None] + scores.dtype.type(delta)
    margins[rows, labels] = 0
    active = margins > 0
    loss = float(xp.where(active, margins, 0).sum() / n)
    grad = active.astype(scores.dtype)
    grad[rows, labels] = -active.sum(axis=1)
    grad /= n
    return loss, LossCache(grad)


def multiclass_svm_backward(dloss, cache: LossCache):
    return cache.grad * cache.grad.dtype.type(dloss)


__all__ = [
    "softmax",
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
    "multiclass_svm_forward",
    "multiclass_svm_backward",
]
