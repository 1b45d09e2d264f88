"""The ops on CuPy arrays equal the ops on NumPy arrays (runs only where CuPy sees a GPU)."""
import numpy as np
import pytest

cp = pytest.importorskip("cupy")
try:
    cp.cuda.runtime.getDeviceCount()
except Exception:  # pragma: no cover - CuPy installed but no GPU
    pytest.skip("CuPy has no GPU here", allow_module_level=True)

from convnet import ops  # noqa: E402
from convnet.backend import get_array_module, to_numpy  # noqa: E402


def _same(a, b, tol=1e-4):
    a, b = to_numpy(a), to_numpy(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))


def _gpu(*arrays):
    return [cp.asarray(a) for a in arrays]


@pytest.mark.parametrize("algorithm", ["im2col", "winograd4", "winograd2"])
def test_conv_forward_backward(algorithm):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 10, 9, 32)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 32, 32)) / 17).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    y, c = ops.conv2d_forward(x, w, b, padding=1, algorithm=algorithm)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, gb = _gpu(x, w, b)
    assert get_array_module(gx) is cp
    yg, cg = ops.conv2d_forward(gx, gw, gb, padding=1, algorithm=algorithm)
    _same(yg, y)
    for a, e in zip(ops.conv2d_backward(cp.asarray(dy), cg), ops.conv2d_backward(dy, c)):
        _same(a, e)


def test_strided_grouped_conv_and_pooling_and_norms():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 11, 8)).astype(np.float32)
    w = rng.standard_normal((3, 2, 4, 6)).astype(np.float32)
    y, c = ops.conv2d_forward(x, w, None, stride=(2, 1), padding=1, groups=2, fit="crop")
    yg, cg = ops.conv2d_forward(cp.asarray(x), cp.asarray(w), None, stride=(2, 1), padding=1, groups=2, fit="crop")
    _same(yg, y)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _same(ops.conv2d_backward(cp.asarray(dy), cg)[0], ops.conv2d_backward(dy, c)[0])
    for fwd, bwd, kw in [(ops.max_pool2d_forward, ops.max_pool2d_backward, dict(pool_size=3, stride=2, padding=1, fit="crop")),
                         (ops.avg_pool2d_forward, ops.avg_pool2d_backward, dict(pool_size=2, fit="crop")),
                         (ops.l2_pool2d_forward, ops.l2_pool2d_backward, dict(pool_size=2, fit="crop"))]:
        y, c = fwd(x, **kw)
        yg, cg = fwd(cp.asarray(x), **kw)
        _same(yg, y)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        _same(bwd(cp.asarray(dy), cg), bwd(dy, c))
    g, bt = np.ones(8, np.float32), np.zeros(8, np.float32)
    y, c = ops.batch_norm_forward(x, g, bt, train=True)
    yg, cg = ops.batch_norm_forward(*_gpu(x, g, bt), train=True)
    _same(yg, y)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _same(ops.batch_norm_backward(cp.asarray(dy), cg)[0], ops.batch_norm_backward(dy, c)[0])
    y, c = ops.local_response_norm_forward(x, size=5, alpha=1e-2, beta=0.75, k=2.0)
    yg, cg = ops.local_response_norm_forward(cp.asarray(x), size=5, alpha=1e-2, beta=0.75, k=2.0)
    _same(yg, y)
    s = rng.standard_normal((4, 5)).astype(np.float32)
    lab = np.array([0, 1, 2, 4])
    l0, _ = ops.softmax_cross_entropy_forward(s, lab)
    l1, _ = ops.softmax_cross_entropy_forward(cp.asarray(s), cp.asarray(lab))
    assert abs(l0 - l1) < 1e-5
