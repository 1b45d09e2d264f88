"""Winograd's α² products split over the two threads (ops/fast/batched.py): the same products as
``np.matmul``, and BLAS's thread count put back afterwards, also after an error."""
import numpy as np
import pytest

from convnet.ops.fast import batched


@pytest.mark.parametrize("shape", [(36, 17, 5, 3), (16, 64, 32, 48), (2, 3, 4, 5), (1, 8, 8, 8)])
def test_split_products_equal_numpy(monkeypatch, rng, shape):
    monkeypatch.setenv("CONVNET_THREADS", "2")
    batch, rows, inner, cols = shape
    a = rng.standard_normal((batch, rows, inner)).astype(np.float32)
    b = rng.standard_normal((batch, inner, cols)).astype(np.float32)
    out = np.full((batch, rows, cols), np.nan, dtype=np.float32)
    assert batched.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-6, atol=1e-6)
    at = np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)  # a transposed view, as in dw
    np.testing.assert_allclose(batched.matmul(at, b, out=np.empty_like(out)), np.matmul(a, b), rtol=1e-6, atol=1e-6)


def test_blas_threads_restored_even_after_an_error(monkeypatch):
    libraries = batched._blas_libraries()
    if not libraries:
        pytest.skip("threadpoolctl sees no BLAS library to limit")
    monkeypatch.setenv("CONVNET_THREADS", "2")
    before = [lib.get_num_threads() for lib in libraries]
    a = np.ones((4, 3, 2), np.float32)
    with pytest.raises(ValueError):
        batched.matmul(a, np.ones((4, 5, 2), np.float32), out=np.empty((4, 3, 2), np.float32))  # 2 != 5
    assert [lib.get_num_threads() for lib in libraries] == before
