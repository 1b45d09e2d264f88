"""Normalization: local response normalization (across channels) and batch normalization.

**LRN** (AlexNet, cuda-convnet's ``rnorm`` across maps, Caffe's and PyTorch's
``LocalResponseNorm``), over the channel axis of an NHWC batch::

    s[c] = k + (alpha / size) · Σ_{c' = c - size//2}^{c + (size-1)//2} x[c']²
    y[c] = x[c] · s[c]^(-beta)

(Caffe and PyTorch divide ``alpha`` by ``size``; the AlexNet paper's
``α = 1e-4`` without the division is ``alpha = size · 1e-4`` here.)
Backward::

    dx[j] = dy[j] · s[j]^(-beta) - (2·alpha·beta / size) · x[j] · Σ_{c: j ∈ window(c)} dy[c] · x[c] · s[c]^(-beta-1)

**Batch normalization** over every axis but the last (N, H, W for NHWC; N for
``(N, D)``).  In training the batch mean and biased variance are used and
returned in the cache so the layer can update its running statistics; in
evaluation the running statistics given are used::

    x̂ = (x - mean) / sqrt(var + eps),    y = gamma · x̂ + beta

**Per-channel affine map** ``y = x · scale + shift`` over the last axis (what batch norm is at
inference, and what ONNX writes as ``Mul``/``Add`` of per-channel constants)::

    dx = dy · scale,    dscale = Σ dy · x,    dshift = Σ dy      (sums over every axis but the last)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import check_float_array, get_array_module, to_numpy
from ..errors import ConfigError, ShapeError
from .checks import check_grad_shape, check_nhwc, check_same_dtype
from .activations import relu as relu_op
from .activations import relu_backward
from .geometry import is_int
from . import kernels
from .kernels import norm as norm_kernels


# -- local response normalization -------------------------------------------------------------
@dataclass
class LRNCache:
    x: object
    s: object
    size: int
    alpha: float
    beta: float


def _channel_window_sum(a, before: int, after: int):
    """``out[..., c] = Σ_{c' = c - before}^{c + after} a[..., c']`` (zero outside)."""
    c = a.shape[-1]
    out = a.copy()
    for d in range(1, before + 1):
        if d < c:
            out[..., d:] += a[..., : c - d]
    for d in range(1, after + 1):
        if d < c:
            out[..., : c - d] += a[..., d:]
    return out


def check_lrn_args(size, alpha, beta, k):
    if not is_int(size) or size < 1:
        raise ConfigError(f"Argument `size` must be a positive integer; received {size!r}.")
    for name, v in (("alpha", alpha), ("beta", beta), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"Argument `{name}` must be a number; received {v!r}.")
    if k <= 0 and alpha <= 0:
        raise ConfigError(f"Arguments `k` and `alpha` cannot both be <= 0 (the scale would be zero); received k={k}, alpha={alpha}.")


def local_response_norm_forward(x, *, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Returns ``(y, cache)``; ``x`` is NHWC and the window runs along C."""
    check_nhwc(x, "local_response_norm")
    check_lrn_args(size, alpha, beta, k)
    size = int(size)
    xp = get_array_module(x)
    s = _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    s *= x.dtype.type(alpha / size)
    s += x.dtype.type(k)
    y = x * xp.power(s, x.dtype.type(-beta))
    return y, LRNCache(x, s, size, alpha, beta)


def local_response_norm_backward(dy, cache: LRNCache):
    xp = get_array_module(dy)
    x, s, size, alpha, beta = cache.x, cache.s, cache.size, cache.alpha, cache.beta
    check_grad_shape(dy, x.shape, "local_response_norm_backward")
    s_pow = xp.power(s, x.dtype.type(-beta))
    t = dy * x * s_pow / s  # dy[c] · x[c] · s[c]^(-beta-1)
    # transpose of the window: c's window covers j exactly when c ∈ [j - (size-1)//2, j + size//2]
    back = _channel_window_sum(t, (size - 1) // 2, size // 2)
    return dy * s_pow - x.dtype.type(2.0 * alpha * beta / size) * x * back


# -- batch normalization ----------------------------------------------------------------------
@dataclass
class BatchNormCache:
    x: object  # the input (a reference): x̂ is recomputed from it, never stored
    inv_std: object
    gamma: object
    mean: object  # batch mean (training) or the running mean used
    var: object  # batch biased variance (training) or the running variance used
    count: int  # values per channel that the statistics were taken over
    train: bool
    reduce: object = None  # sums over the processes sharing the batch (sync batch norm), or None
    relu_y: object = None  # the output, when a ReLU was applied to it (``relu=True``): its mask


def _channel_stats(x2):
    """Per-column mean and biased variance of an ``(M, C)`` matrix.

    Sums are GEMVs with a ones vector (BLAS; NumPy's reduction over the long axis of a
    narrow matrix is several times slower), taken around a per-channel shift (the first
    row) so that a large mean does not cancel the variance away.
    """
    xp = get_array_module(x2)
    m = x2.shape[0]
    ones = xp.ones(m, dtype=x2.dtype)
    shift = x2[0].copy()
    d = x2 - shift
    mean_d = (ones @ d) / m
    d *= d
    var = xp.maximum((ones @ d) / m - mean_d * mean_d, 0)
    return mean_d + shift, var


def batch_norm_forward(x, gamma, beta, *, train, running_mean=None, running_var=None, eps=1e-5, reduce=None,
                       relu=False):
    """Batch normalization over all axes but the last; returns ``(y, cache)``.

    ``relu=True``: ``y`` is ReLU's ``max(·, 0)`` of it, made in the same pass, and the backward
    takes the ReLU's output gradient — the two layers' numbers to the bit, two passes fewer.

    Computed as ``y = x · s + t`` with per-channel ``s = gamma / sqrt(var + eps)`` and
    ``t = beta - mean · s`` (two passes, no x̂ array).  In training the cache's
    ``mean``/``var`` are the batch statistics (``var`` biased, divide by ``count``);
    the running update is the caller's (the layer's).

    ``reduce`` (training only): None, or a callable that sums a float64 array over every
    process holding a part of the batch (data-parallel training, :mod:`convnet.distributed`).
    The statistics are then those of the whole batch — ``count`` too — and the backward pass
    uses the whole batch's sums: the same numbers as one process with the whole batch.
    """
    check_float_array(x, "x")
    if x.ndim not in (2, 4) or min(x.shape) < 1:
        raise ShapeError(f"batch_norm: `x` must be (N, H, W, C) or (N, D); received shape {tuple(x.shape)}.")
    check_same_dtype("batch_norm", x, gamma=gamma, beta=beta)
    c = x.shape[-1]
    for name, v in (("gamma", gamma), ("beta", beta)):
        if tuple(v.shape) != (c,):
            raise ShapeError(f"batch_norm: `{name}` must have shape ({c},) for x of shape {tuple(x.shape)}; received {tuple(v.shape)}.")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
        raise ConfigError(f"Argument `eps` must be a positive number; received {eps!r}.")
    xp = get_array_module(x)
    count = x.size // c
    if train and reduce is not None:
        mean, var, count = _global_stats(x.reshape(count, c), running_mean, reduce)
    elif train:
        if count < 2:
            raise ShapeError(
                f"batch_norm: training needs more than one value per channel to estimate a variance; "
                f"received x of shape {tuple(x.shape)}."
            )
        if kernels.usable(x):
            mean, var = norm_kernels.channel_stats(x.reshape(count, c))
        else:
            mean, var = _channel_stats(x.reshape(count, c))
    else:
        if running_mean is None or running_var is None:
            raise ConfigError("batch_norm: evaluation (train=False) needs `running_mean` and `running_var`.")
        mean, var = running_mean.astype(x.dtype, copy=False), running_var.astype(x.dtype, copy=False)
    if kernels.usable(x):
        # float64 statistics from the kernel; y = (x - mean) · gamma/σ + beta, centred first
        dt = x.dtype
        mean, var = mean.astype(dt, copy=False), var.astype(dt, copy=False)
        inv_std = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(dt)
        y = norm_kernels.affine(x, mean, gamma * inv_std, beta, relu=relu)
    else:
        mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
        inv_std = 1.0 / xp.sqrt(var + x.dtype.type(eps))
        scale = gamma * inv_std
        y = x * scale
        y += beta - mean * scale
        if relu:
            y = relu_op(y, inplace=True)
    return y, BatchNormCache(x, inv_std, gamma, mean, var, count, bool(train), reduce if train else None,
                             y if relu else None)


def _global_stats(x2, shift, reduce):
    """Mean and biased variance per column over the rows of ``x2`` on every process (``reduce``
    sums), and the total row count.  Each process sends ``[m, Σ(x - shift), Σ(x - shift)²]`` in
    float64; ``shift`` is the running mean (the same on every process, and near the batch mean
    once training has begun, so the variance does not cancel away)."""
    xp = get_array_module(x2)
    m, c = x2.shape
    shift = np.zeros(c) if shift is None else np.asarray(to_numpy(shift), dtype=np.float64)
    if kernels.usable(x2):
        mean, var = norm_kernels.channel_stats(x2)
    else:
        mean, var = _channel_stats(x2)
    mean, var = np.asarray(to_numpy(mean), dtype=np.float64), np.asarray(to_numpy(var), dtype=np.float64)
    d = mean - shift
    sums = reduce(np.concatenate([[float(m)], m * d, m * (var + d * d)]))
    total = int(round(sums[0]))
    if total < 2:
        raise ShapeError(f"batch_norm: training needs more than one value per channel over all processes to estimate "
                         f"a variance; received {total} in all (x of shape {tuple(x2.shape)} here).")
    mean_d = sums[1:1 + c] / total
    var = np.maximum(sums[1 + c:] / total - mean_d * mean_d, 0.0)
    return xp.asarray(mean_d + shift), xp.asarray(var), total


def batch_norm_backward(dy, cache: BatchNormCache):
    """Returns ``(dx, dgamma, dbeta)``.

    With ``m`` values per channel, ``a = gamma · inv_std`` and ``x̂ = (x - mean) · inv_std``::

        dbeta = Σ dy,   dgamma = Σ dy · x̂ = (Σ dy · x - mean · dbeta) · inv_std
        dx = a · (dy - dbeta/m - x̂ · dgamma/m)             (training)
           = a · dy + b · x + c   with per-channel b, c    (no x̂ array)
        dx = a · dy                                         (evaluation)
    """
    xp = get_array_module(dy)
    x = cache.x
    check_grad_shape(dy, x.shape, "batch_norm_backward")
    c_dim = x.shape[-1]
    if kernels.usable(dy, x):
        return _batch_norm_backward_compiled(dy, x, cache)
    if cache.relu_y is not None:  # the ReLU's gradient first (a new array: dy is not ours)
        dy = relu_backward(dy, cache.relu_y)
    dy2, x2 = dy.reshape(-1, c_dim), x.reshape(-1, c_dim)
    ones = xp.ones(dy2.shape[0], dtype=dy.dtype)
    dbeta = ones @ dy2
    dgamma = (ones @ (dy2 * x2) - cache.mean * dbeta) * cache.inv_std
    a = cache.gamma * cache.inv_std
    dx = dy * a
    if cache.train:
        m = cache.count
        # the parameter gradients stay this process's share; dx needs the whole batch's sums
        sdb, sdg = _whole_batch(cache, dbeta, dgamma)
        sdb, sdg = sdb.astype(dy.dtype, copy=False), sdg.astype(dy.dtype, copy=False)
        b = -a * cache.inv_std * sdg / m
        dx += x * b
        dx += a * (cache.mean * cache.inv_std * sdg - sdb) / m
    return dx, dgamma.astype(dy.dtype, copy=False), dbeta


def _whole_batch(cache: BatchNormCache, dbeta, dgamma):
    """``(Σ dy, Σ dy · x̂)`` over the whole batch: these sums themselves on one process, their
    sums over the processes (one ``reduce`` of ``2·C`` float64 values) in sync batch norm."""
    if cache.reduce is None:
        return dbeta, dgamma
    xp = get_array_module(dbeta)
    c = dbeta.shape[0]
    sums = cache.reduce(np.concatenate([np.asarray(to_numpy(dbeta), dtype=np.float64),
                                        np.asarray(to_numpy(dgamma), dtype=np.float64)]))
    return xp.asarray(sums[:c]), xp.asarray(sums[c:])


def _batch_norm_backward_compiled(dy, x, cache: BatchNormCache):
    """:func:`batch_norm_backward` in two passes (:mod:`convnet.ops.kernels.norm`), sums in float64::

        dx = a · dy + (x - mean) · b + c,   b = -a · inv_std · dgamma / m,   c = -a · dbeta / m
    """
    c_dim = x.shape[-1]
    inv = cache.inv_std.astype(np.float64)
    y = cache.relu_y
    dbeta, sdyx = norm_kernels.grad_sums(dy.reshape(-1, c_dim), x.reshape(-1, c_dim), cache.mean,
                                         None if y is None else y.reshape(-1, c_dim))
    dgamma = sdyx * inv
    a = cache.gamma * inv
    if cache.train:
        sdb, sdg = _whole_batch(cache, dbeta, dgamma)
        b, c0 = -a * inv * sdg / cache.count, -a * sdb / cache.count
    else:
        b = c0 = np.zeros_like(a)
    dx = norm_kernels.affine2(dy, x, cache.mean, a, b, c0, y)
    return dx, dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)


# -- per-channel affine ---------------------------------------------------------------------------
@dataclass
class ChannelAffineCache:
    x: object  # a reference to the input, for dscale
    scale: object


def channel_affine_forward(x, scale, shift=None):
    """``y = x · scale + shift`` per channel (the last axis of ``x``, any rank ``>= 2``): returns
    ``(y, cache)``.  ``scale`` and ``shift`` have shape ``(C,)``; ``shift=None`` adds nothing."""
    check_float_array(x, "x")
    check_same_dtype("channel_affine", x, scale=scale, shift=shift)
    if x.ndim < 2 or min(x.shape) < 1:
        raise ShapeError(f"channel_affine: `x` must be a non-empty batch (N, ..., C); received shape {tuple(x.shape)}.")
    c = x.shape[-1]
    for name, v in (("scale", scale), ("shift", shift)):
        if v is not None and tuple(v.shape) != (c,):
            raise ShapeError(f"channel_affine: `{name}` must have shape ({c},) to match the C={c} channels of x; "
                             f"received shape {tuple(v.shape)}.")
    y = x * scale
    if shift is not None:
        y += shift
    return y, ChannelAffineCache(x, scale)


def channel_affine_backward(dy, cache: ChannelAffineCache):
    """``(dx, dscale, dshift)``: ``dy · scale``, ``Σ dy · x`` and ``Σ dy`` over every axis but the last."""
    x = cache.x
    check_grad_shape(dy, x.shape, "channel_affine_backward")
    c = x.shape[-1]
    dy2 = dy.reshape(-1, c)
    dscale = (dy2 * x.reshape(-1, c)).sum(axis=0)
    return dy * cache.scale, dscale, dy2.sum(axis=0)
