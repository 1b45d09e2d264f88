"""The elementwise kernels (batch norm, ReLU, max pooling) split large arrays by rows over two
threads: the split results equal the whole-range ones — bitwise where each value is computed
alone, and to float64 rounding for the per-channel sums (added half by half)."""
import numpy as np
import pytest

pytest.importorskip("numba")
from convnet.ops import kernels  # noqa: E402
from convnet.ops.kernels import norm, parallel, pool, relu  # noqa: E402


def _both(monkeypatch, fn):
    """``fn()`` with every array on one thread, then with every array split in two."""
    if not kernels.enabled():
        pytest.skip("compiled kernels switched off (CONVNET_NUMBA=0)")
    monkeypatch.setenv("CONVNET_THREADS", "2")
    monkeypatch.setattr(parallel, "SPLIT_MIN_VALUES", 1 << 60)
    whole = fn()
    monkeypatch.setattr(parallel, "SPLIT_MIN_VALUES", 0)
    return whole, fn()


@pytest.mark.parametrize("shape", [(3, 5, 7, 6), (1, 1, 3, 2), (2, 9, 4, 1)])
def test_batch_norm_passes_split_equal_whole(monkeypatch, rng, shape):
    x = (rng.standard_normal(shape) * 3 + 5).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    c = shape[-1]
    mu, a, b, c0 = (rng.standard_normal(c) for _ in range(4))

    def run():
        x2, dy2 = x.reshape(-1, c), dy.reshape(-1, c)
        return (norm.channel_stats(x2), norm.channel_sum(x2), norm.grad_sums(dy2, x2, mu),
                norm.affine(x, mu, a, b), norm.affine2(dy, x, mu, a, b, c0))

    (stats, csum, gsums, y, dx), (stats2, csum2, gsums2, y2, dx2) = _both(monkeypatch, run)
    for got, want in [*zip(stats2, stats), (csum2, csum), *zip(gsums2, gsums)]:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.array_equal(y2, y) and np.array_equal(dx2, dx)


def test_relu_split_equals_whole_in_and_out_of_place(monkeypatch, rng):
    x = rng.standard_normal((4, 5, 3, 7)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def run():
        y = relu.relu(x)
        y_in = relu.relu(x.copy(), inplace=True)
        dx = relu.relu_backward(dy, y)
        dx_in = relu.relu_backward(dy.copy(), y, inplace=True)
        return y, y_in, dx, dx_in

    whole, split = _both(monkeypatch, run)
    for got, want in zip(split, whole):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("kernel, stride, pads", [((2, 2), (2, 2), (0, 0)), ((3, 2), (2, 1), (1, 0))])
def test_max_pool_split_equals_whole(monkeypatch, rng, kernel, stride, pads):
    x = rng.standard_normal((3, 9, 8, 5)).astype(np.float32)
    ho = (9 + 2 * pads[0] - kernel[0]) // stride[0] + 1
    wo = (8 + 2 * pads[1] - kernel[1]) // stride[1] + 1
    dy = rng.standard_normal((3, ho, wo, 5)).astype(np.float32)

    def run():
        y, switches = pool.max_pool_forward(x, kernel, stride, pads, (ho, wo), True)
        plain, _ = pool.max_pool_forward(x, kernel, stride, pads, (ho, wo), False)
        dx = pool.max_pool_backward(dy, switches, kernel, stride, pads, x.shape)
        return y, switches, plain, dx

    whole, split = _both(monkeypatch, run)
    for got, want in zip(split, whole):
        assert np.array_equal(got, want)
