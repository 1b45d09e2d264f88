"""Classification metrics from class scores: accuracy, top-k accuracy, confusion matrix.

Shapes: ``scores (N, K)``, ``labels (N,)`` integers in ``[0, K)``.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy


def top_k_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of samples whose label is among the ``k`` highest scores (ties: any order)."""
    scores, labels = to_numpy(scores), to_numpy(labels)
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def accuracy(scores, labels) -> float:
    """Top-1 accuracy."""
    scores, labels = to_numpy(scores), to_numpy(labels)
    if len(labels) == 0:
        return float("nan")
    return float((scores.argmax(axis=1) == labels).mean())


def confusion_matrix(scores, labels, num_classes: int) -> np.ndarray:
    """``M[true, predicted]`` counts, shape ``(K, K)``."""
    pred = to_numpy(scores).argmax(axis=1)
    idx = to_numpy(labels).astype(np.int64) * num_classes + pred
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
