"""The numba max-pooling kernels equal the NumPy offset loops (their oracle), ties and NaN included."""
import numpy as np
import pytest

from convnet.ops import kernels_numba
from convnet.ops import pool as P

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
