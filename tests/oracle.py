"""Test helpers shared by the op and layer tests: the three oracles' plumbing.

* PyTorch access: :func:`require_torch` (``importorskip`` normally; a hard failure
  when ``CONVNET_REQUIRE_ORACLE=1``), the ``torch`` fixture in ``conftest.py``,
  and the layout moves NHWC↔NCHW, HWIO↔OIHW, which live only here and in
  ``convnet.interop``.
* A centred finite-difference gradient checker in float64 (:func:`gradcheck`):
  the full Jacobian for tiny shapes, random projections ``u·J·v`` for larger
  ones, always with random upstream gradients.
* Input draws that stay away from non-differentiable points: the ReLU kink
  (:func:`away_from_zero`) and max-pool ties (:func:`no_pool_ties`,
  :func:`distinct_values`).
* :func:`assert_close`: per-dtype tolerance relative to the largest magnitude.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

#: relative tolerance (times max |expected|) per dtype
TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


# -- PyTorch ------------------------------------------------------------------------------------
def require_torch():
    """Import torch (2 threads).  Skip when missing, unless CONVNET_REQUIRE_ORACLE=1: then fail."""
    if os.environ.get("CONVNET_REQUIRE_ORACLE") == "1":
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the environment
            pytest.fail(f"CONVNET_REQUIRE_ORACLE=1 but PyTorch (the third oracle) cannot be imported: {exc}")
    else:
        torch = pytest.importorskip("torch")
    if torch.get_num_threads() != 2:
        torch.set_num_threads(2)
    return torch


def require_module(name: str):
    """Import an oracle library (``onnxruntime``, ``onnx``). Skip when missing, unless
    CONVNET_REQUIRE_ORACLE=1: then fail."""
    import importlib

    if os.environ.get("CONVNET_REQUIRE_ORACLE") == "1":
        try:
            return importlib.import_module(name)
        except ImportError as exc:  # pragma: no cover - depends on the environment
            pytest.fail(f"CONVNET_REQUIRE_ORACLE=1 but {name} cannot be imported: {exc}")
    return pytest.importorskip(name)


def nhwc_to_nchw(x):
    return np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))


def nchw_to_nhwc(x):
    return np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))


def hwio_to_oihw(w):
    return np.ascontiguousarray(np.asarray(w).transpose(3, 2, 0, 1))


def oihw_to_hwio(w):
    return np.ascontiguousarray(np.asarray(w).transpose(2, 3, 1, 0))


def t(torch, a, *, grad=False):
    """A torch tensor sharing nothing with ``a`` (same dtype), optionally requiring grad."""
    out = torch.tensor(np.ascontiguousarray(a))
    if grad:
        out.requires_grad_(True)
    return out


def n(tensor):
    """Tensor -> NumPy (detached)."""
    return tensor.detach().cpu().numpy()


# -- comparisons --------------------------------------------------------------------------------
def tol_for(dtype) -> float:
    return TOL[np.dtype(dtype)]


def assert_close(actual, expected, *, dtype=None, rtol=None, scale=None, what=""):
    """``|actual - expected| <= rtol · max(max|expected|, tiny)`` elementwise, with shapes equal.

    ``rtol`` defaults to the tolerance of ``dtype`` (or of ``actual``'s dtype).  ``scale``
    replaces ``max|expected|`` where the result is a cancellation of larger terms (give the
    terms' magnitude then).
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    if rtol is None:
        rtol = tol_for(dtype if dtype is not None else actual.dtype)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    assert np.all(np.isfinite(a)) == np.all(np.isfinite(e)), f"{what}: non-finite values differ"
    if scale is None:
        scale = float(np.max(np.abs(e))) if e.size else 0.0
    scale = max(scale, 1e-30)
    err = float(np.max(np.abs(a - e))) if e.size else 0.0
    assert err <= rtol * scale, f"{what}: max abs error {err:.3e} > {rtol:.1e} x max|expected| {scale:.3e}"


# -- input draws --------------------------------------------------------------------------------
def away_from_zero(rng, shape, *, margin=1e-3, dtype=np.float64):
    """Standard normal values with every ``|x| >= margin`` (re-drawn otherwise): no ReLU kink."""
    x = rng.standard_normal(shape)
    bad = np.abs(x) < margin
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) < margin
    return x.astype(dtype)


def distinct_values(rng, shape, *, gap=1e-2, dtype=np.float64):
    """Values pairwise at least ``gap`` apart (a random permutation of a spaced grid, jittered).

    No window of any pooling can then hold a tie, whatever its shape.
    """
    size = int(np.prod(shape))
    grid = (np.arange(size) - size / 2) * (2 * gap)
    x = rng.permutation(grid) + rng.uniform(-gap / 2, gap / 2, size)
    return x.reshape(shape).astype(dtype)


def _window_slices(h, w, pool, stride, pads):
    """Yield (rows, cols) index arrays of each window over the real input (padding excluded)."""
    (pt, pb), (pl, pr) = pads
    kh, kw = pool
    sh, sw = stride
    ho = (h + pt + pb - kh) // sh + 1
    wo = (w + pl + pr - kw) // sw + 1
    for i in range(ho):
        rows = [r - pt for r in range(i * sh, i * sh + kh) if 0 <= r - pt < h]
        for j in range(wo):
            cols = [q - pl for q in range(j * sw, j * sw + kw) if 0 <= q - pl < w]
            yield rows, cols


def no_pool_ties(rng, shape, *, pool, stride=None, pads=((0, 0), (0, 0)), gap=1e-3, dtype=np.float64):
    """Standard normal NHWC input whose every max-pool window has its top two values >= ``gap`` apart.

    Windows whose top two values are closer are re-drawn (only their values) until none is.
    ``pads`` must include any ``fit="pad"`` extra rows (padding never competes: it is -inf).
    """
    stride = pool if stride is None else stride
    x = rng.standard_normal(shape)
    _, h, w, _ = shape
    windows = list(_window_slices(h, w, pool, stride, pads))
    for _ in range(1000):
        clean = True
        for rows, cols in windows:
            v = x[:, rows][:, :, cols].reshape(shape[0], -1, shape[3])
            if v.shape[1] < 2:
                continue
            top = np.sort(v, axis=1)
            bad = (top[:, -1] - top[:, -2]) < gap  # (N, C)
            if bad.any():
                clean = False
                nn, cc = np.nonzero(bad)
                for r in rows:
                    for q in cols:
                        x[nn, r, q, cc] = rng.standard_normal(len(nn))
        if clean:
            return x.astype(dtype)
    raise RuntimeError("no_pool_ties: could not draw a tie-free input")  # pragma: no cover


# -- finite differences -------------------------------------------------------------------------
def _perturbed(arrays, name, delta):
    out = dict(arrays)
    out[name] = arrays[name] + delta
    return out


def numerical_jacobian(f, arrays, name, *, eps=1e-6):
    """Centred-difference Jacobian ``(y.size, arrays[name].size)`` of ``f(**arrays)`` in float64."""
    x = arrays[name]
    y0 = np.asarray(f(**arrays), dtype=np.float64)
    jac = np.zeros((y0.size, x.size))
    for idx in range(x.size):
        d = np.zeros(x.size)
        d[idx] = eps
        d = d.reshape(x.shape)
        yp = np.asarray(f(**_perturbed(arrays, name, d)), dtype=np.float64)
        ym = np.asarray(f(**_perturbed(arrays, name, -d)), dtype=np.float64)
        jac[:, idx] = (yp - ym).reshape(-1) / (2 * eps)
    return jac


def gradcheck(f, vjp, arrays, *, rng, wrt=None, mode="auto", eps=1e-6, rtol=1e-6, projections=3, max_full=400):
    """Check an op's backward against centred finite differences, in float64.

    ``f(**arrays) -> y`` is the forward (an array, or a Python float for losses);
    ``vjp(dy, **arrays) -> {name: grad}`` runs forward and backward with the
    upstream gradient ``dy`` and returns the gradients of the inputs in ``wrt``
    (default: every key of ``arrays``).

    * ``mode="full"`` (tiny shapes): the whole finite-difference Jacobian ``J`` is
      compared with the analytic one, row by row from one-hot upstream gradients,
      and ``Jᵀ·dy`` with the analytic gradient for a random ``dy``.
    * ``mode="projection"``: for a few random ``u`` (the upstream gradient) and
      random directions ``v``, the directional derivative
      ``(u·f(x + eps·v) - u·f(x - eps·v)) / 2eps`` against ``<vjp(u), v>``.
    * ``mode="auto"``: full when every input and the output have at most
      ``max_full`` elements.

    The upstream gradient is always random (standard normal), never all ones.
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    wrt = list(arrays) if wrt is None else list(wrt)
    y = np.asarray(f(**arrays), dtype=np.float64)
    if mode == "auto":
        small = y.size <= max_full and all(arrays[k].size <= max_full for k in wrt)
        mode = "full" if small else "projection"

    def grads_for(dy):
        dy = dy.reshape(y.shape) if y.ndim else float(dy.reshape(()))
        g = vjp(dy, **arrays)
        for k in wrt:
            assert np.shape(g[k]) == arrays[k].shape, f"grad of {k}: shape {np.shape(g[k])} != {arrays[k].shape}"
        return {k: np.asarray(g[k], dtype=np.float64) for k in wrt}

    if mode == "full":
        jacs = {k: numerical_jacobian(f, arrays, k, eps=eps) for k in wrt}
        analytic = {k: np.zeros_like(jacs[k]) for k in wrt}
        for row in range(y.size):
            e = np.zeros(y.size)
            e[row] = 1.0
            g = grads_for(e)
            for k in wrt:
                analytic[k][row] = g[k].reshape(-1)
        for k in wrt:
            scale = max(float(np.abs(jacs[k]).max()), 1e-3)
            err = float(np.abs(analytic[k] - jacs[k]).max())
            assert err <= rtol * scale + 1e-8, f"Jacobian of {k}: max error {err:.3e} (scale {scale:.3e})"
        dy = rng.standard_normal(y.size)
        g = grads_for(dy)
        for k in wrt:
            expected = jacs[k].T @ dy
            scale = max(float(np.abs(expected).max()), 1e-3)
            err = float(np.abs(g[k].reshape(-1) - expected).max())
            assert err <= rtol * scale + 1e-8, f"J^T dy for {k}: max error {err:.3e} (scale {scale:.3e})"
        return mode

    for _ in range(projections):
        u = rng.standard_normal(y.shape)
        g = grads_for(u)
        for k in wrt:
            v = rng.standard_normal(arrays[k].shape)
            lp = float(np.sum(u * np.asarray(f(**_perturbed(arrays, k, eps * v)), dtype=np.float64)))
            lm = float(np.sum(u * np.asarray(f(**_perturbed(arrays, k, -eps * v)), dtype=np.float64)))
            numeric = (lp - lm) / (2 * eps)
            analytic = float(np.sum(g[k] * v))
            # roundoff of the difference quotient scales with sum|u·y| / eps; the terms of <g, v> with sum|g·v|
            scale = max(float(np.sum(np.abs(g[k] * v))), float(np.sum(np.abs(u * y))) * 1e-4, 1e-6)
            assert abs(numeric - analytic) <= rtol * scale, (
                f"u·J·v for {k}: numeric {numeric:.10e} vs analytic {analytic:.10e} (scale {scale:.3e})"
            )
    return mode


# -- geometry, written independently of convnet.ops.geometry ------------------------------------
def axis_pads(size, kernel, stride, dilation, padding_pair, fit):
    """``(out, pad_before, pad_after_total)`` for one axis, or None when the geometry is invalid.

    ``padding_pair`` is ``(before, after)`` or ``"same"``; ``pad_after_total`` includes the zero
    rows ``fit="pad"`` adds (PyTorch's ceil_mode rule: no window may start past input + top pad).
    ``"same"`` always gives ``ceil(size / stride)`` whatever ``fit`` (TensorFlow's rule); when the
    kernel is narrower than the stride no padding is needed and the last rows are simply not read.
    """
    eff = dilation * (kernel - 1) + 1
    if padding_pair == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + eff - size, 0)
        assert (size + total - eff) // stride + 1 == out
        return out, total // 2, total - total // 2
    pb, pa = padding_pair
    span = size + pb + pa - eff
    if span < 0:
        return None
    if span % stride == 0:
        return span // stride + 1, pb, pa
    if fit == "error":
        return None
    floor_out = span // stride + 1
    if fit == "crop":
        return floor_out, pb, pa
    ceil_out = -(-span // stride) + 1
    if (ceil_out - 1) * stride >= size + pb:
        return floor_out, pb, pa
    return ceil_out, pb, (ceil_out - 1) * stride + eff - size - pb


def normalise_padding(padding):
    """Any padding form -> ``((t, b), (l, r))`` or ``("same", "same")``."""
    if isinstance(padding, str):
        return ("same", "same") if padding.lower() == "same" else ((0, 0), (0, 0))
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if all(isinstance(p, int) for p in padding):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return tuple(tuple(p) for p in padding)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def explicit_geometry(hw, kernel, *, stride=1, padding=0, dilation=1, fit="error"):
    """``((Ho, Wo), ((t, b_total), (l, r_total)))`` or None when invalid (see :func:`axis_pads`)."""
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    ph, pw = normalise_padding(padding)
    a = axis_pads(hw[0], kh, sh, dh, ph, fit)
    b = axis_pads(hw[1], kw, sw, dw, pw, fit)
    if a is None or b is None:
        return None
    return (a[0], b[0]), ((a[1], a[2]), (b[1], b[2]))
