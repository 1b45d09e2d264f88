"""The numba kernels equal their NumPy versions (the oracles): max pooling (ties and NaN
included), batch norm and ReLU."""
import numpy as np
import pytest

from convnet.ops import activations as A
from convnet.ops import kernels as kernels_numba
from convnet.ops import norm as Nm
from convnet.ops import pool as P
from convnet.ops.fast import conv2d_backward, conv2d_forward

pytest.importorskip("numba")

CASES = [
    # shape, pool, stride, padding, fit
    ((2, 8, 8, 3), 2, None, 0, "error"),
    ((2, 9, 7, 4), (3, 2), (2, 1), (1, 1), "crop"),
    ((1, 10, 11, 2), 3, 2, 1, "pad"),
    ((3, 7, 9, 5), (2, 3), (3, 2), 0, "pad"),
    ((2, 6, 6, 3), 3, 1, 1, "error"),
]


def _both(fn, monkeypatch):
    monkeypatch.setattr(kernels_numba, "enabled", lambda: False)
    slow = fn()
    monkeypatch.setattr(kernels_numba, "enabled", lambda: True)
    fast = fn()
    return slow, fast


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("values", ["random", "ties", "nan"])
def test_compiled_max_pool_equals_numpy(case, dtype, values, monkeypatch):
    shape, pool, stride, padding, fit = case
    rng = np.random.default_rng(0)
    if values == "ties":
        x = rng.integers(0, 3, size=shape).astype(dtype)  # many tied maxima: the first must win
    else:
        x = rng.standard_normal(shape).astype(dtype)
    if values == "nan":
        x[rng.random(shape) < 0.1] = np.nan
    kw = dict(pool_size=pool, stride=stride, padding=padding, fit=fit)
    (y0, c0), (y1, c1) = _both(lambda: P.max_pool2d_forward(x, **kw), monkeypatch)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(c1.switches, c0.switches)
    p0, p1 = _both(lambda: P.max_pool2d(x, **kw), monkeypatch)
    np.testing.assert_array_equal(p1, y0)
    np.testing.assert_array_equal(p0, y0)
    dy = rng.standard_normal(y0.shape).astype(dtype)
    d0, d1 = _both(lambda: P.max_pool2d_backward(dy, c0), monkeypatch)
    np.testing.assert_allclose(d1, d0, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_switch_off_by_environment(monkeypatch):
    monkeypatch.setenv("CONVNET_NUMBA", "0")
    assert not kernels_numba.enabled()
    monkeypatch.setenv("CONVNET_NUMBA", "1")
    assert kernels_numba.enabled()


BN_SHAPES = [(4, 5, 6, 3), (3, 7, 5, 16), (64, 10), (2, 1, 1, 5)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("train", [True, False])
def test_compiled_batch_norm_equals_numpy(shape, dtype, train, monkeypatch):
    rng = np.random.default_rng(1)
    c = shape[-1]
    # a large mean and a small spread: the shifted sums must not cancel the variance away
    x = (rng.standard_normal(shape) * 0.5 + 100.0).astype(dtype)
    gamma = (rng.random(c) + 0.5).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    rm, rv = rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)
    fwd = lambda: Nm.batch_norm_forward(x, gamma, beta, train=train, running_mean=rm, running_var=rv)
    (y0, c0), (y1, c1) = _both(fwd, monkeypatch)
    tol = dict(rtol=1e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    assert y1.dtype == dtype and c1.mean.dtype == dtype and c1.inv_std.dtype == dtype
    monkeypatch.setattr(kernels_numba, "enabled", lambda: False)
    y64, _ = Nm.batch_norm_forward(*(a.astype(np.float64) for a in (x, gamma, beta)), train=train,
                                   running_mean=rm.astype(np.float64), running_var=rv.astype(np.float64))
    np.testing.assert_allclose(y1, y64, **tol)  # the kernel: centred, as exact as float32 allows
    scale = np.abs(x).max() * np.abs(c0.inv_std * gamma).max()
    np.testing.assert_allclose(y0, y64, rtol=tol["rtol"], atol=tol["atol"] * scale)  # NumPy: x·s + t
    np.testing.assert_allclose(c1.mean, c0.mean, **tol)
    np.testing.assert_allclose(c1.var, c0.var, rtol=tol["rtol"] * 10, atol=tol["atol"])
    dy = rng.standard_normal(shape).astype(dtype)
    # oracle: the NumPy backward in float64 (NumPy's float32 dgamma = (Σdy·x - mean·Σdy)/σ
    # loses digits to cancellation at mean 100; the kernel sums dy·(x - mean) in float64)
    monkeypatch.setattr(kernels_numba, "enabled", lambda: False)
    _, c64 = Nm.batch_norm_forward(*(a.astype(np.float64) for a in (x, gamma, beta)), train=train,
                                   running_mean=rm.astype(np.float64), running_var=rv.astype(np.float64))
    ref = Nm.batch_norm_backward(dy.astype(np.float64), c64)
    monkeypatch.setattr(kernels_numba, "enabled", lambda: True)
    # dx = a·dy + (x - mean)·b + c cancels (to ~1e-4 of a·dy with two values per channel)
    scales = (np.abs(dy).max() * np.abs(gamma * c64.inv_std).max(), np.abs(ref[1]).max(), np.abs(ref[2]).max())
    for got in (Nm.batch_norm_backward(dy, c1), Nm.batch_norm_backward(dy, c0)):  # either cache works
        for g, r, sc in zip(got, ref, scales):
            assert g.dtype == dtype
            np.testing.assert_allclose(g, r, rtol=tol["rtol"], atol=tol["atol"] * sc)


def test_compiled_batch_norm_takes_strided_input(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 8, 6)).astype(np.float32)[:, ::2, 1::2, ::2]  # not contiguous
    g, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    (y0, _), (y1, cache) = _both(lambda: Nm.batch_norm_forward(x, g, b, train=True), monkeypatch)
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal((4, 6, 8, 6)).astype(np.float32)[:, ::2, ::2, 1::2]
    (d0, _, _), (d1, _, _) = _both(lambda: Nm.batch_norm_backward(dy, cache), monkeypatch)
    np.testing.assert_allclose(d1, d0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_relu_equals_numpy(dtype, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 7, 4)).astype(dtype)
    x[0, 0, 0, :2] = 0.0  # the kink: gradient 0 there
    x[1, 1, 1, 0] = np.nan  # NaN passes through the forward
    (y0, _), (y1, _) = _both(lambda: A.relu_forward(x), monkeypatch)
    np.testing.assert_array_equal(y1, y0)
    assert np.isnan(y1[1, 1, 1, 0])
    dy = rng.standard_normal(x.shape).astype(dtype)
    dy[x < 0] = np.inf  # a non-finite gradient where the unit is off stays out of dx
    d0, d1 = _both(lambda: A.relu_backward(dy, y0), monkeypatch)
    np.testing.assert_array_equal(d1, d0)
    assert np.isfinite(d1[x < 0]).all() and (d1[x < 0] == 0).all()
    s0, s1 = _both(lambda: A.relu(x[:, ::2, 1::2]), monkeypatch)  # a strided view
    np.testing.assert_array_equal(s1, s0)
    # in place: the same bits as out of place (signed zeros included), written into x itself,
    # contiguous or not, on both paths
    x[2, 0, 0, 0] = -np.inf
    x[2, 0, 0, 1] = -0.0
    for view in (lambda a: a, lambda a: a[:, ::2, 1::2]):
        for flag in (False, True):
            monkeypatch.setattr(kernels_numba, "enabled", lambda flag=flag: flag)
            want = A.relu(view(x))
            arr = view(x.copy())
            got = A.relu(arr, inplace=True)
            assert got is arr
            assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), flag
            np.testing.assert_array_equal(got, np.maximum(view(x), 0))
    # backward in place: the same bits as out of place, into dy itself
    dy[0, 0, 0, :] = -0.0  # signed zero gradients where the unit is on
    for view in (lambda a: a, lambda a: a[:, ::2, 1::2]):
        for flag in (False, True):
            monkeypatch.setattr(kernels_numba, "enabled", lambda flag=flag: flag)
            want = A.relu_backward(view(dy), view(y0))
            g = view(dy.copy())
            got = A.relu_backward(g, view(y0), inplace=True)
            assert got is g
            assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), flag


COL2IM_CASES = [
    # x shape, kernel, stride, dilation, padding, groups
    ((2, 9, 11, 6), (3, 3), (2, 2), (1, 1), 1, 1),
    ((1, 10, 9, 4), (3, 2), (3, 2), (1, 2), ((2, 0), (1, 1)), 2),
    ((2, 8, 8, 3), (7, 7), (2, 2), (1, 1), 3, 1),
    ((2, 7, 7, 5), (1, 1), (2, 2), (1, 1), 0, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, stride, dilation, padding, groups", COL2IM_CASES)
def test_compiled_col2im_equals_numpy(shape, kernel, stride, dilation, padding, groups, dtype, monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((*kernel, shape[3] // groups, 4)).astype(dtype)
    kw = dict(stride=stride, dilation=dilation, padding=padding, groups=groups, fit="crop", algorithm="im2col")
    y, _ = conv2d_forward(x, w, None, workspace_bytes=512, **kw)  # tiny blocks: rows split across blocks
    dy = rng.standard_normal(y.shape).astype(dtype)

    def grads():  # planned (numba on or off) and run
        return conv2d_backward(dy, conv2d_forward(x, w, None, workspace_bytes=512, **kw)[1])

    (dx0, dw0, _), (dx1, dw1, _) = _both(grads, monkeypatch)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dx1, dx0, rtol=tol, atol=tol * np.abs(dx0).max())
    np.testing.assert_array_equal(dw1, dw0)
    assert dx1.flags.c_contiguous and dx1.shape == x.shape
