"""Global gradient-norm clipping.

The global norm of a step is ``sqrt(sum over parameters of sum(dx**2))``.  If it
exceeds ``max_norm`` every gradient is scaled by ``max_norm / (norm + 1e-6)``
(the rule of ``torch.nn.utils.clip_grad_norm_``), so the direction of the whole
update is kept and only its length shrinks.
"""
from __future__ import annotations

import math
from typing import Iterable

from ..backend import get_array_module
from ..errors import ConfigError, NonFiniteError

__all__ = ["global_grad_norm", "clip_grad_norm", "clip_coefficient"]


def _norm(grads) -> float:
    total = 0.0
    for g in grads:
        xp = get_array_module(g)
        flat = g.reshape(-1)
        total += float(xp.dot(flat, flat))
    return math.sqrt(total)


def global_grad_norm(named_params: Iterable) -> float:
    """The L2 norm of all gradients of ``(name, param, grad)`` tuples, as one vector."""
    return _norm([g for _, _, g in named_params])


def clip_coefficient(grads, max_norm: float) -> tuple[float, float]:
    """``(scale, norm)``: ``scale = min(1, max_norm / (norm + 1e-6))``; ``scale = 1`` when norm is not finite."""
    norm = _norm(grads)
    if not math.isfinite(norm) or norm <= max_norm:
        return 1.0, norm
    return max_norm / (norm + 1e-6), norm


def clip_grad_norm(named_params: Iterable, max_norm: float, *, error_if_nonfinite: bool = True) -> float:
    """Scale the gradients IN PLACE so that their global L2 norm is at most ``max_norm``.

    ``named_params`` yields ``(name, param, grad)`` tuples (``net.named_parameters()``).
    Returns the norm before clipping.  A non-finite norm raises NonFiniteError
    naming the first non-finite gradient (grads untouched), unless
    ``error_if_nonfinite=False``, in which case nothing is scaled and the norm is
    returned.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not (max_norm > 0) \
            or not math.isfinite(max_norm):
        raise ConfigError(f"Argument `max_norm` must be a positive finite number; received {max_norm!r}.")
    items = list(named_params)
    scale, norm = clip_coefficient([g for _, _, g in items], float(max_norm))
    if not math.isfinite(norm):
        if error_if_nonfinite:
            for name, _, g in items:
                xp = get_array_module(g)
                if not bool(xp.all(xp.isfinite(g))):
                    raise NonFiniteError(
                        f"Gradient of {name!r} contains NaN or infinite values; the global gradient norm is {norm}."
                    )
            raise NonFiniteError(f"The global gradient norm overflowed to {norm}.")
        return norm
    if scale < 1.0:
        for _, _, g in items:
            g *= scale
    return norm
