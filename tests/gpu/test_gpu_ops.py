"""Every op, forward and backward, on CuPy equals NumPy: float32 to rtol 1e-4, float64 to 1e-10."""
import numpy as np
import pytest

from convnet import ops
from convnet.backend import get_array_module, to_numpy

TOL = {"float32": 1e-4, "float64": 1e-10}
DTYPES = sorted(TOL)


def _same(gpu, cpu, dtype, what=""):
    assert get_array_module(gpu) is not np, f"{what}: the GPU result is a NumPy array (a host round trip)"
    a, b = to_numpy(gpu), np.asarray(cpu)
    tol = TOL[dtype]
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max(initial=0))), err_msg=what)


def _data(dtype, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _check(cp, dtype, fwd, bwd, inputs, *, kw=None, name=""):
    """fwd(*inputs, **kw) -> (y, cache); bwd(dy, cache) -> grads: equal on both devices."""
    kw = kw or {}
    y, cache = fwd(*inputs, **kw)
    yg, cache_g = fwd(*[cp.asarray(a) if isinstance(a, np.ndarray) else a for a in inputs], **kw)
    _same(yg, y, dtype, f"{name} forward")
    (dy,) = _data(dtype, y.shape, seed=9)
    grads, grads_g = bwd(dy, cache), bwd(cp.asarray(dy), cache_g)
    grads, grads_g = (grads, grads_g) if isinstance(grads, tuple) else ((grads,), (grads_g,))
    for i, (a, b) in enumerate(zip(grads_g, grads)):
        if b is not None:
            _same(a, b, dtype, f"{name} backward {i}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ["im2col", "winograd2", "winograd4"])
def test_conv(cp, dtype, algorithm):
    x, w, b = _data(dtype, (2, 10, 9, 16), (3, 3, 16, 8), (8,))
    _check(cp, dtype, ops.conv2d_forward, ops.conv2d_backward, [x, w / 12, b],
           kw=dict(padding=1, algorithm=algorithm), name=f"conv {algorithm}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_strided_grouped(cp, dtype):
    x, w = _data(dtype, (2, 9, 11, 8), (3, 3, 4, 6))
    _check(cp, dtype, ops.conv2d_forward, ops.conv2d_backward, [x, w, None],
           kw=dict(stride=2, padding=1, groups=2, fit="crop"), name="conv strided grouped")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pooling(cp, dtype, pool):
    (x,) = _data(dtype, (2, 9, 9, 5))
    fwd, bwd = ((ops.max_pool2d_forward, ops.max_pool2d_backward) if pool == "max"
                else (ops.avg_pool2d_forward, ops.avg_pool2d_backward))
    _check(cp, dtype, fwd, bwd, [x], kw=dict(pool_size=3, stride=2, padding=1, fit="crop"), name=f"{pool} pool")


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_train(cp, dtype):
    x, g, b = _data(dtype, (4, 5, 5, 6), (6,), (6,))
    _check(cp, dtype, ops.batch_norm_forward, ops.batch_norm_backward, [x, g, b], kw=dict(train=True), name="batch norm")


@pytest.mark.parametrize("dtype", DTYPES)
def test_local_response_norm(cp, dtype):
    (x,) = _data(dtype, (2, 5, 5, 8))
    _check(cp, dtype, ops.local_response_norm_forward, ops.local_response_norm_backward, [x],
           kw=dict(size=5, alpha=1e-2, beta=0.75, k=2.0), name="LRN")


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_relu_softmax(cp, dtype):
    x, w, b = _data(dtype, (6, 20), (20, 7), (7,))
    _check(cp, dtype, ops.dense_forward, ops.dense_backward, [x, w, b], name="dense")
    _check(cp, dtype, ops.relu_forward, ops.relu_backward, [x], name="relu")
    _check(cp, dtype, ops.softmax_forward, ops.softmax_backward, [x], name="softmax")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "multiclass_svm"])
def test_losses(cp, dtype, loss):
    (s,) = _data(dtype, (8, 5))
    labels = np.array([0, 1, 2, 3, 4, 0, 1, 2])
    fwd, bwd = getattr(ops, f"{loss}_forward"), getattr(ops, f"{loss}_backward")
    l0, c0 = fwd(s, labels)
    l1, c1 = fwd(cp.asarray(s), cp.asarray(labels))
    assert abs(l0 - l1) <= TOL[dtype] * max(1.0, abs(l0))
    _same(bwd(1.0, c1), bwd(1.0, c0), dtype, loss)
