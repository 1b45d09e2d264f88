"""Naive reference loops, written straight from the definitions: the tests' oracle.

Everything here is **slow on purpose** and **float64 only**: plain Python loops
over every output element and every window position, no im2col, no strided
views, no vectorised tricks, so that each function can be checked against its
formula by reading it.  The package never imports this module; only the tests do
(``from convnet.ops import reference as ref``).  Use it on tiny shapes.

Conventions (the same as the fast ops): activations NHWC ``(N, H, W, C)``,
kernels HWIO ``(kh, kw, C // groups, K)``, height before width everywhere.
Padding is always given explicitly as ``((top, bottom), (left, right))``; the
output size is the floor of ``(size + pads - effective_kernel) / stride + 1``,
so a caller that wants ``fit="pad"`` passes the extra bottom/right rows in the
pads (or, for average pooling, as ``fit_extra`` so they are never counted).
"""
from __future__ import annotations

import math

import numpy as np


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def out_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int = 1) -> int:
    """``floor((size + P_before + P_after - (dilation·(kernel-1) + 1)) / stride) + 1``."""
    eff = dilation * (kernel - 1) + 1
    return (size + pad_before + pad_after - eff) // stride + 1


def _padded_value(x, n, r, q, c, pads, fill):
    """``x_pad[n, r, q, c]`` in padded coordinates, without building the padded array."""
    (pt, _), (pl, _) = pads
    h, w = x.shape[1], x.shape[2]
    rr, qq = r - pt, q - pl
    if 0 <= rr < h and 0 <= qq < w:
        return float(x[n, rr, qq, c])
    return fill


# -- convolution --------------------------------------------------------------------------------
def conv2d(x, w, b=None, *, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """``y[n,i,j,k] = b[k] + Σ_{a,b',c} x_pad[n, i·sh + a·dh, j·sw + b'·dw, g·Cg + c] · w[a,b',c,k]``.

    ``g = k // (K / groups)`` is the group of output channel ``k`` and ``Cg = C / groups``.
    """
    x, w = _f64(x), _f64(w)
    n_, h, wd, c_ = x.shape
    kh, kw, cg, k_ = w.shape
    sh, sw = stride
    dh, dw = dilation
    (pt, pb), (pl, pr) = pads
    if c_ != cg * groups or k_ % groups:
        raise ValueError(f"reference conv2d: C={c_}, w C/groups={cg}, K={k_}, groups={groups} are inconsistent")
    kg = k_ // groups
    ho = out_size(h, kh, sh, pt, pb, dh)
    wo = out_size(wd, kw, sw, pl, pr, dw)
    y = np.zeros((n_, ho, wo, k_))
    for n in range(n_):
        for i in range(ho):
            for j in range(wo):
                for k in range(k_):
                    g = k // kg
                    total = 0.0 if b is None else float(b[k])
                    for a in range(kh):
                        for bb in range(kw):
                            for c in range(cg):
                                v = _padded_value(x, n, i * sh + a * dh, j * sw + bb * dw, g * cg + c, pads, 0.0)
                                total += v * float(w[a, bb, c, k])
                    y[n, i, j, k] = total
    return y


def conv_transpose2d(x, w, b=None, *, stride=(1, 1), pads=((0, 0), (0, 0)), output_padding=(0, 0),
                     dilation=(1, 1), groups=1):
    """Scatter every input value through the kernel, then crop the pads::

        y_full[n, i·sh + a·dh, j·sw + b'·dw, g·Cog + o] += x[n, i, j, k] · w[a, b', o, k]   (g = k // (C_in/groups))
        y = y_full[:, Pt : Pt + Ho, Pl : Pl + Wo] + b

    ``w`` is ``(kh, kw, C_out/groups, C_in)``; the full output has ``(H-1)·sh + dh·(kh-1) + 1 +
    output_padding`` rows.
    """
    x, w = _f64(x), _f64(w)
    n_, h, wd, c_in = x.shape
    kh, kw, cog, c_in_w = w.shape
    sh, sw = stride
    dh, dw = dilation
    (pt, pb), (pl, pr) = pads
    if c_in_w != c_in or c_in % groups:
        raise ValueError(f"reference conv_transpose2d: C_in={c_in}, w C_in={c_in_w}, groups={groups} are inconsistent")
    cig = c_in // groups
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]
    full = np.zeros((n_, full_h, full_w, cog * groups))
    for n in range(n_):
        for i in range(h):
            for j in range(wd):
                for k in range(c_in):
                    g = k // cig
                    for a in range(kh):
                        for bb in range(kw):
                            for o in range(cog):
                                full[n, i * sh + a * dh, j * sw + bb * dw, g * cog + o] += (
                                    float(x[n, i, j, k]) * float(w[a, bb, o, k]))
    y = full[:, pt : full_h - pb, pl : full_w - pr, :].copy()
    if b is not None:
        for c in range(y.shape[3]):
            y[..., c] += float(b[c])
    return y


def locally_connected2d(x, w, b=None, *, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1)):
    """``y[n,i,j,k] = b[i,j,k] + Σ_{a,b',c} x_pad[n, i·sh + a·dh, j·sw + b'·dw, c] · w[i,j,a,b',c,k]``."""
    x, w = _f64(x), _f64(w)
    n_, h, wd, c_ = x.shape
    ho, wo, kh, kw, cw, k_ = w.shape
    sh, sw = stride
    dh, dw = dilation
    (pt, pb), (pl, pr) = pads
    if cw != c_:
        raise ValueError(f"reference: w has C={cw}, x has C={c_}")
    if (ho, wo) != (out_size(h, kh, sh, pt, pb, dh), out_size(wd, kw, sw, pl, pr, dw)):
        raise ValueError(f"reference: w's output grid {(ho, wo)} does not match the geometry")
    y = np.zeros((n_, ho, wo, k_))
    for n in range(n_):
        for i in range(ho):
            for j in range(wo):
                for k in range(k_):
                    total = 0.0 if b is None else float(b[i, j, k])
                    for a in range(kh):
                        for bb in range(kw):
                            for c in range(c_):
                                v = _padded_value(x, n, i * sh + a * dh, j * sw + bb * dw, c, pads, 0.0)
                                total += v * float(w[i, j, a, bb, c, k])
                    y[n, i, j, k] = total
    return y


# -- pooling ------------------------------------------------------------------------------------
def _window(x, n, i, j, c, pool, stride, pads, fill, dilation=(1, 1)):
    """The window's values in row-major order (top row first, left to right); taps ``dilation`` apart."""
    kh, kw = pool
    sh, sw = stride
    dh, dw = dilation
    return [_padded_value(x, n, i * sh + a * dh, j * sw + bb * dw, c, pads, fill)
            for a in range(kh) for bb in range(kw)]


def _pool_out(x, pool, stride, pads, dilation=(1, 1)):
    (pt, pb), (pl, pr) = pads
    return (out_size(x.shape[1], pool[0], stride[0], pt, pb, dilation[0]),
            out_size(x.shape[2], pool[1], stride[1], pl, pr, dilation[1]))


def max_pool2d(x, *, pool=(2, 2), stride=None, pads=((0, 0), (0, 0)), dilation=(1, 1)):
    """``y[n,i,j,c] = max`` over the window; padding is ``-inf`` (never the maximum)."""
    x = _f64(x)
    stride = pool if stride is None else stride
    ho, wo = _pool_out(x, pool, stride, pads, dilation)
    n_, _, _, c_ = x.shape
    y = np.zeros((n_, ho, wo, c_))
    for n in range(n_):
        for i in range(ho):
            for j in range(wo):
                for c in range(c_):
                    y[n, i, j, c] = max(_window(x, n, i, j, c, pool, stride, pads, -math.inf, dilation))
    return y


def max_pool2d_backward(x, dy, *, pool=(2, 2), stride=None, pads=((0, 0), (0, 0)), dilation=(1, 1)):
    """Route each ``dy`` to the *first* maximum of its window in row-major order (ties: first wins)."""
    x, dy = _f64(x), _f64(dy)
    stride = pool if stride is None else stride
    (pt, _), (pl, _) = pads
    ho, wo = _pool_out(x, pool, stride, pads, dilation)
    n_, h, wd, c_ = x.shape
    dx = np.zeros_like(x)
    for n in range(n_):
        for i in range(ho):
            for j in range(wo):
                for c in range(c_):
                    vals = _window(x, n, i, j, c, pool, stride, pads, -math.inf, dilation)
                    first = vals.index(max(vals))
                    r = i * stride[0] + (first // pool[1]) * dilation[0] - pt
                    q = j * stride[1] + (first % pool[1]) * dilation[1] - pl
                    if 0 <= r < h and 0 <= q < wd:
                        dx[n, r, q, c] += dy[n, i, j, c]
    return dx


def avg_pool2d(x, *, pool=(2, 2), stride=None, pads=((0, 0), (0, 0)), fit_extra=(0, 0), count_include_pad=True,
               dilation=(1, 1)):
    """Window sum divided by the number of counted positions.

    ``pads`` are the user's zero pads; ``fit_extra = (rows, cols)`` are zero rows and
    columns added at the bottom/right by ``fit="pad"`` and are never counted.  With
    ``count_include_pad`` the user's pads count, otherwise only real input does.
    """
    x = _f64(x)
    stride = pool if stride is None else stride
    (pt, pb), (pl, pr) = pads
    full = ((pt, pb + fit_extra[0]), (pl, pr + fit_extra[1]))
    ho, wo = _pool_out(x, pool, stride, full, dilation)
    n_, h, wd, c_ = x.shape
    y = np.zeros((n_, ho, wo, c_))
    for i in range(ho):
        for j in range(wo):
            count = 0
            for a in range(pool[0]):
                for bb in range(pool[1]):
                    r, q = i * stride[0] + a * dilation[0], j * stride[1] + bb * dilation[1]
                    if count_include_pad:
                        count += (r < h + pt + pb) and (q < wd + pl + pr)
                    else:
                        count += (pt <= r < pt + h) and (pl <= q < pl + wd)
            for n in range(n_):
                for c in range(c_):
                    y[n, i, j, c] = sum(_window(x, n, i, j, c, pool, stride, full, 0.0, dilation)) / count
    return y


def l2_pool2d(x, *, pool=(2, 2), stride=None, pads=((0, 0), (0, 0)), dilation=(1, 1)):
    """``y = sqrt(Σ_window x²)`` (zero padding)."""
    x = _f64(x)
    stride = pool if stride is None else stride
    ho, wo = _pool_out(x, pool, stride, pads, dilation)
    n_, _, _, c_ = x.shape
    y = np.zeros((n_, ho, wo, c_))
    for n in range(n_):
        for i in range(ho):
            for j in range(wo):
                for c in range(c_):
                    window = _window(x, n, i, j, c, pool, stride, pads, 0.0, dilation)
                    y[n, i, j, c] = math.sqrt(sum(v * v for v in window))
    return y


def lp_pool2d(x, *, p=2.0, pool=(2, 2), stride=None, pads=((0, 0), (0, 0)), dilation=(1, 1)):
    """``y = (Σ_window |x|^p)^(1/p)`` (zero padding)."""
    x = _f64(x)
    stride = pool if stride is None else stride
    ho, wo = _pool_out(x, pool, stride, pads, dilation)
    n_, _, _, c_ = x.shape
    y = np.zeros((n_, ho, wo, c_))
    for n in range(n_):
        for i in range(ho):
            for j in range(wo):
                for c in range(c_):
                    window = _window(x, n, i, j, c, pool, stride, pads, 0.0, dilation)
                    y[n, i, j, c] = sum(abs(v) ** p for v in window) ** (1.0 / p)
    return y


def global_max_pool(x):
    """``(y (N, C), dx_of(dy))``: the maximum over H and W, and a function routing ``dy`` to the
    first maximum in row-major order."""
    x = _f64(x)
    n_, h, wd, c_ = x.shape
    y = np.zeros((n_, c_))
    where = {}
    for n in range(n_):
        for c in range(c_):
            vals = [float(x[n, i, j, c]) for i in range(h) for j in range(wd)]
            y[n, c] = max(vals)
            where[n, c] = divmod(vals.index(y[n, c]), wd)

    def dx_of(dy):
        dx = np.zeros_like(x)
        for (n, c), (i, j) in where.items():
            dx[n, i, j, c] = float(dy[n, c])
        return dx

    return y, dx_of


def fractional_starts(u: float, size: int, out: int, pool: int) -> list[int]:
    """Graham's pseudo-random sequence: ``floor((i+u)·alpha) - floor(u·alpha)``, last = ``size - pool``."""
    if out == 1:
        return [size - pool]
    alpha = (size - pool) / (out - 1)
    return [math.floor((i + u) * alpha) - math.floor(u * alpha) for i in range(out - 1)] + [size - pool]


def fractional_max_pool2d(x, row_starts, col_starts, *, pool=(2, 2)):
    """``y[n,i,j,c] = max x[n, rows[n,c,i] + a, cols[n,c,j] + b', c]`` for ``a < Fh, b' < Fw``.

    ``row_starts (N, C, Ho)`` and ``col_starts (N, C, Wo)`` are given (see :func:`fractional_starts`).
    """
    x = _f64(x)
    n_, _, _, c_ = x.shape
    ho, wo = len(row_starts[0][0]), len(col_starts[0][0])
    y = np.zeros((n_, ho, wo, c_))
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    r0, q0 = int(row_starts[n][c][i]), int(col_starts[n][c][j])
                    y[n, i, j, c] = max(
                        float(x[n, r0 + a, q0 + bb, c]) for a in range(pool[0]) for bb in range(pool[1])
                    )
    return y


# -- normalization ------------------------------------------------------------------------------
def local_response_norm(x, *, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """``y[c] = x[c] · (k + alpha/size · Σ_{c'=c-size//2}^{c+(size-1)//2} x[c']²)^(-beta)`` along C."""
    x = _f64(x)
    n_, h, wd, c_ = x.shape
    y = np.zeros_like(x)
    for n in range(n_):
        for i in range(h):
            for j in range(wd):
                for c in range(c_):
                    s = 0.0
                    for cc in range(c - size // 2, c + (size - 1) // 2 + 1):
                        if 0 <= cc < c_:
                            s += float(x[n, i, j, cc]) ** 2
                    y[n, i, j, c] = float(x[n, i, j, c]) * (k + alpha / size * s) ** (-beta)
    return y


def batch_norm(x, gamma, beta, *, train, running_mean=None, running_var=None, eps=1e-5):
    """Per channel (last axis): ``y = gamma · (x - mean) / sqrt(var + eps) + beta``.

    Training uses the batch mean and the *biased* batch variance (divide by the count);
    evaluation uses the running statistics given.  Returns ``(y, mean, var)``.
    """
    x = _f64(x)
    c_ = x.shape[-1]
    flat = x.reshape(-1, c_)
    m = flat.shape[0]
    y = np.zeros_like(flat)
    means, variances = np.zeros(c_), np.zeros(c_)
    for c in range(c_):
        if train:
            mean = sum(float(v) for v in flat[:, c]) / m
            var = sum((float(v) - mean) ** 2 for v in flat[:, c]) / m
        else:
            mean, var = float(running_mean[c]), float(running_var[c])
        means[c], variances[c] = mean, var
        for r in range(m):
            y[r, c] = float(gamma[c]) * (float(flat[r, c]) - mean) / math.sqrt(var + eps) + float(beta[c])
    return y.reshape(x.shape), means, variances


# -- dense, activations, losses -----------------------------------------------------------------
def dense(x, w, b=None):
    """``y[n, k] = b[k] + Σ_d x[n, d] · w[d, k]``."""
    x, w = _f64(x), _f64(w)
    n_, d_ = x.shape
    k_ = w.shape[1]
    y = np.zeros((n_, k_))
    for n in range(n_):
        for k in range(k_):
            y[n, k] = (0.0 if b is None else float(b[k])) + sum(float(x[n, d]) * float(w[d, k]) for d in range(d_))
    return y


def relu(x):
    """``max(0, x)`` elementwise."""
    x = _f64(x)
    return np.array([max(0.0, float(v)) for v in x.reshape(-1)]).reshape(x.shape)


def leaky_relu(x, negative_slope):
    """``x`` where ``x > 0``, else ``negative_slope·x``, elementwise."""
    x = _f64(x)
    a = float(negative_slope)
    return np.array([v if v > 0 else a * v for v in map(float, x.reshape(-1))]).reshape(x.shape)


def sigmoid(x):
    """``1 / (1 + exp(-x))`` elementwise (``exp(x) / (1 + exp(x))`` for negative ``x``)."""
    x = _f64(x)
    return np.array([1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))
                     for v in map(float, x.reshape(-1))]).reshape(x.shape)


def clip(x, lo=None, hi=None):
    """``min(max(x, lo), hi)`` elementwise; a bound of None is no bound."""
    x = _f64(x)
    out = []
    for v in map(float, x.reshape(-1)):
        if lo is not None and v < lo:
            v = lo
        if hi is not None and v > hi:
            v = hi
        out.append(v)
    return np.array(out).reshape(x.shape)


def _lines(shape, axes):
    """Every group of index tuples that share the coordinates off ``axes`` (the sets a softmax normalises)."""
    groups = {}
    for idx in np.ndindex(*shape):
        key = tuple(v for a, v in enumerate(idx) if a not in axes)
        groups.setdefault(key, []).append(idx)
    return groups.values()


def softmax(x, axes=(-1,)):
    """``exp(x_i) / Σ_j exp(x_j)`` over the positions that differ only along ``axes`` (shifted by their max)."""
    x = _f64(x)
    axes = {a % x.ndim for a in axes}
    y = np.zeros_like(x)
    for group in _lines(x.shape, axes):
        m = max(float(x[i]) for i in group)
        total = sum(math.exp(float(x[i]) - m) for i in group)
        for i in group:
            y[i] = math.exp(float(x[i]) - m) / total
    return y


def log_softmax(x, axes=(-1,)):
    """``x_i - log Σ_j exp(x_j)`` over the positions that differ only along ``axes``."""
    x = _f64(x)
    axes = {a % x.ndim for a in axes}
    y = np.zeros_like(x)
    for group in _lines(x.shape, axes):
        m = max(float(x[i]) for i in group)
        log_norm = m + math.log(sum(math.exp(float(x[i]) - m) for i in group))
        for i in group:
            y[i] = float(x[i]) - log_norm
    return y


def channel_shuffle(x, groups):
    """``y[..., i·g + j] = x[..., j·(C/g) + i]`` along the last axis."""
    x = _f64(x)
    c = x.shape[-1]
    per = c // groups
    y = np.zeros_like(x)
    for i in range(per):
        for j in range(groups):
            y[..., i * groups + j] = x[..., j * per + i]
    return y


def softmax_cross_entropy(scores, labels) -> float:
    """``(1/N) Σ_n -log( exp(s[n, y_n]) / Σ_k exp(s[n, k]) )`` (shifted by the row max for stability)."""
    s = _f64(scores)
    total = 0.0
    for n in range(s.shape[0]):
        row = [float(v) for v in s[n]]
        m = max(row)
        log_norm = m + math.log(sum(math.exp(v - m) for v in row))
        total += log_norm - row[int(labels[n])]
    return total / s.shape[0]


def multiclass_svm(scores, labels, *, delta=1.0) -> float:
    """``(1/N) Σ_n Σ_{k ≠ y_n} max(0, s[n, k] - s[n, y_n] + delta)`` (Weston-Watkins, CS231n)."""
    s = _f64(scores)
    total = 0.0
    for n in range(s.shape[0]):
        y = int(labels[n])
        for k in range(s.shape[1]):
            if k != y:
                total += max(0.0, float(s[n, k]) - float(s[n, y]) + delta)
    return total / s.shape[0]
