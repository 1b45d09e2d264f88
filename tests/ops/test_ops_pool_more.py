"""Pooling for issue 16: dilated max/average/Lp pooling, Lp pooling for any p (L2 = p 2), global max
and global Lp pooling, and 1-D convolution and pooling as the case H = 1 — each against the
reference loops, finite differences with a random dy, and PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, GeometryError, ShapeError
from convnet.ops import reference as ref
from convnet.ops.fast import conv2d_backward, conv2d_forward
from convnet.ops.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_lp_pool_backward,
    global_lp_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    lp_pool2d_backward,
    lp_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)
from oracle import (
    assert_close,
    away_from_zero,
    distinct_values,
    explicit_geometry,
    gradcheck,
    n,
    nchw_to_nhwc,
    nhwc_to_nchw,
    pair,
    t,
)


@pytest.fixture(params=["compiled", "numpy"])
def numba(request, monkeypatch):
    monkeypatch.setenv("CONVNET_NUMBA", "1" if request.param == "compiled" else "0")
    return request.param


# (name, shape, pool, kwargs) — every case dilated; symmetric padding so that PyTorch takes it
DILATED = [
    ("d2", (2, 7, 7, 2), (2, 2), dict(stride=1, dilation=2)),
    ("d2x3_nonsquare", (1, 9, 9, 3), (3, 2), dict(stride=(2, 1), dilation=(2, 3))),
    ("d2_padded", (2, 6, 7, 2), (3, 3), dict(stride=2, padding=1, dilation=2, fit="crop")),
    ("d3_fit_pad", (1, 9, 8, 1), (2, 2), dict(stride=2, dilation=3, fit="pad")),
    ("d1x2_stride_default", (1, 6, 8, 2), (2, 2), dict(dilation=(1, 2), fit="crop")),
]
DIDS = [c[0] for c in DILATED]


def geometry_of(shape, pool, kwargs):
    return explicit_geometry(shape[1:3], pool, stride=kwargs.get("stride", pool), padding=kwargs.get("padding", 0),
                             dilation=kwargs.get("dilation", 1), fit=kwargs.get("fit", "error"))


def ref_kwargs(shape, pool, kwargs):
    (_, pads) = geometry_of(shape, pool, kwargs)
    return dict(pool=pool, stride=pair(kwargs.get("stride", pool)), pads=pads, dilation=pair(kwargs.get("dilation", 1)))


def user_pads(kwargs):
    p = pair(kwargs.get("padding", 0))
    return ((p[0], p[0]), (p[1], p[1]))


# -- dilated max pooling ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", DILATED, ids=DIDS)
def test_dilated_max_matches_reference_and_ties_go_to_the_first(case, rng, numba):
    _, shape, pool, kwargs = case
    x = rng.standard_normal(shape)
    y, cache = max_pool2d_forward(x, pool_size=pool, **kwargs)
    rk = ref_kwargs(shape, pool, kwargs)
    assert_close(y, ref.max_pool2d(x, **rk))
    np.testing.assert_array_equal(max_pool2d(x, pool_size=pool, **kwargs), y)
    ties = rng.integers(0, 3, size=shape).astype(np.float64)
    y, cache = max_pool2d_forward(ties, pool_size=pool, **kwargs)
    dy = rng.standard_normal(y.shape)
    assert_close(max_pool2d_backward(dy, cache), ref.max_pool2d_backward(ties, dy, **rk))


@pytest.mark.parametrize("case", DILATED, ids=DIDS)
def test_dilated_max_backward_full_jacobian(case, rng):
    _, shape, pool, kwargs = case
    x = distinct_values(rng, (1, *shape[1:]))
    gradcheck(lambda x: max_pool2d_forward(x, pool_size=pool, **kwargs)[0],
              lambda dy, x: {"x": max_pool2d_backward(dy, max_pool2d_forward(x, pool_size=pool, **kwargs)[1])},
              {"x": x}, rng=rng, mode="full")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", DILATED, ids=DIDS)
def test_dilated_max_matches_torch(case, dtype, rng, torch, numba):
    _, shape, pool, kwargs = case
    x = distinct_values(rng, shape, dtype=dtype)
    y, cache = max_pool2d_forward(x, pool_size=pool, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    yt = torch.nn.functional.max_pool2d(xt, pool, stride=pair(kwargs.get("stride", pool)),
                                        padding=pair(kwargs.get("padding", 0)), dilation=kwargs["dilation"],
                                        ceil_mode=kwargs.get("fit") == "pad")
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)), dtype=dtype)
    assert_close(max_pool2d_backward(dy, cache), nchw_to_nhwc(n(xt.grad)), dtype=dtype)


# -- dilated average pooling -------------------------------------------------------------------------
@pytest.mark.parametrize("include", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("case", DILATED, ids=DIDS)
def test_dilated_avg_matches_reference_and_finite_differences(case, include, rng):
    _, shape, pool, kwargs = case
    x = rng.standard_normal(shape)
    y, _ = avg_pool2d_forward(x, pool_size=pool, count_include_pad=include, **kwargs)
    (_, ((_, pb), (_, pr))) = geometry_of(shape, pool, kwargs)
    (_, ub), (_, ur) = user_pads(kwargs)
    expected = ref.avg_pool2d(x, pool=pool, stride=pair(kwargs.get("stride", pool)), pads=user_pads(kwargs),
                              fit_extra=(pb - ub, pr - ur), count_include_pad=include,
                              dilation=pair(kwargs["dilation"]))
    assert_close(y, expected)
    kw = dict(pool_size=pool, count_include_pad=include, **kwargs)
    gradcheck(lambda x: avg_pool2d_forward(x, **kw)[0],
              lambda dy, x: {"x": avg_pool2d_backward(dy, avg_pool2d_forward(x, **kw)[1])},
              {"x": x[:1]}, rng=rng, mode="full")


@pytest.mark.parametrize("case", [c for c in DILATED if c[3].get("fit") != "pad"], ids=lambda c: c[0])
def test_dilated_avg_matches_torch_unfold(case, rng, torch):
    """PyTorch's avg_pool2d has no dilation: F.unfold (which has) and a mean over the taps, zero
    padding counted (count_include_pad=True) — the ONNX AveragePool-19 definition."""
    _, shape, pool, kwargs = case
    x = rng.standard_normal(shape)
    y, cache = avg_pool2d_forward(x, pool_size=pool, **kwargs)
    dy = rng.standard_normal(y.shape)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    cols = torch.nn.functional.unfold(xt, pool, dilation=pair(kwargs["dilation"]),
                                      padding=pair(kwargs.get("padding", 0)), stride=pair(kwargs.get("stride", pool)))
    yt = cols.reshape(shape[0], shape[3], pool[0] * pool[1], -1).mean(dim=2).reshape(shape[0], shape[3], *y.shape[1:3])
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)))
    assert_close(avg_pool2d_backward(dy, cache), nchw_to_nhwc(n(xt.grad)))


# -- Lp pooling ------------------------------------------------------------------------------------
LP_CASES = [
    ("2x2", (2, 4, 6, 3), (2, 2), dict()),
    ("3x2_s21_pad", (1, 7, 6, 2), (3, 2), dict(stride=(2, 1), padding=1, fit="crop")),
    ("dilated", (1, 8, 7, 2), (2, 3), dict(stride=1, dilation=(3, 2))),
    ("fit_pad", (2, 5, 5, 1), (2, 2), dict(fit="pad")),
]
LIDS = [c[0] for c in LP_CASES]
PS = [1, 1.5, 2, 3, 4.5]


@pytest.mark.parametrize("p", PS, ids=str)
@pytest.mark.parametrize("case", LP_CASES, ids=LIDS)
def test_lp_matches_reference_and_finite_differences(case, p, rng):
    _, shape, pool, kwargs = case
    x = away_from_zero(rng, shape, margin=1e-2)  # |x|^(p-1) has a kink at 0 for p <= 2
    y, cache = lp_pool2d_forward(x, p=p, pool_size=pool, **kwargs)
    assert_close(y, ref.lp_pool2d(x, p=p, **ref_kwargs(shape, pool, kwargs)))
    y32, _ = lp_pool2d_forward(x.astype(np.float32), p=p, pool_size=pool, **kwargs)
    assert y32.dtype == np.float32 and cache.x is x and cache.y is y
    assert_close(y32, y, dtype=np.float32)
    kw = dict(p=p, pool_size=pool, **kwargs)
    gradcheck(lambda x: lp_pool2d_forward(x, **kw)[0],
              lambda dy, x: {"x": lp_pool2d_backward(dy, lp_pool2d_forward(x, **kw)[1])},
              {"x": x[:1]}, rng=rng, mode="full", rtol=1e-5)


def test_l2_is_lp_with_p_2(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    y2, c2 = l2_pool2d_forward(x, pool_size=3, stride=1, padding=1, dilation=2, fit="crop")
    yp, cp = lp_pool2d_forward(x, p=2, pool_size=3, stride=1, padding=1, dilation=2, fit="crop")
    np.testing.assert_array_equal(y2, yp)
    dy = rng.standard_normal(y2.shape)
    np.testing.assert_array_equal(l2_pool2d_backward(dy, c2), lp_pool2d_backward(dy, cp))


def test_lp_gradient_is_zero_through_an_all_zero_window():
    x = np.zeros((1, 4, 4, 1))
    x[0, 0, 0, 0] = -3.0
    for p in PS:
        y, cache = lp_pool2d_forward(x, p=p, pool_size=2)
        dx = lp_pool2d_backward(np.full(y.shape, 2.0), cache)
        assert np.all(np.isfinite(dx)) and np.count_nonzero(dx) == 1
        assert dx[0, 0, 0, 0] == pytest.approx(-2.0)  # d|x|/dx · 2 for the only non-zero value


@pytest.mark.parametrize("p", PS, ids=str)
def test_lp_matches_torch(p, rng, torch):
    """PyTorch's lp_pool2d sums x^p (no absolute value): compared on |x|-free terms via unfold and
    autograd of the definition (Σ|x|^p)^(1/p), and with F.lp_pool2d on positive input."""
    shape, pool, stride = (2, 7, 6, 3), (3, 2), (2, 2)
    x = away_from_zero(rng, shape, margin=1e-2)
    y, cache = lp_pool2d_forward(x, p=p, pool_size=pool, stride=stride, fit="crop")
    dy = rng.standard_normal(y.shape)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    cols = torch.nn.functional.unfold(xt, pool, stride=stride)
    yt = (cols.abs() ** p).reshape(2, 3, 6, -1).sum(dim=2) ** (1 / p)
    yt = yt.reshape(2, 3, *y.shape[1:3])
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)))
    assert_close(lp_pool2d_backward(dy, cache), nchw_to_nhwc(n(xt.grad)))
    positive = np.abs(x)
    yp, _ = lp_pool2d_forward(positive, p=p, pool_size=pool, stride=stride, fit="crop")
    assert_close(yp, nchw_to_nhwc(n(torch.nn.functional.lp_pool2d(t(torch, nhwc_to_nchw(positive)), p, pool,
                                                                  stride=stride))))


@pytest.mark.parametrize("p", [0.5, 0, -1, float("inf"), float("nan"), True, "2"])
def test_lp_order_below_one_or_not_finite_is_refused(p):
    with pytest.raises(ConfigError, match="`p`"):
        lp_pool2d_forward(np.ones((1, 2, 2, 1)), p=p)
    with pytest.raises(ConfigError, match="`p`"):
        global_lp_pool_forward(np.ones((1, 2, 2, 1)), p=p)


# -- global max and global Lp --------------------------------------------------------------------------
def test_global_max_matches_reference_and_ties_go_to_the_first(rng):
    x = rng.standard_normal((3, 4, 5, 2))
    y, cache = global_max_pool_forward(x)
    expected, dx_of = ref.global_max_pool(x)
    assert y.shape == (3, 2)
    assert_close(y, expected)
    dy = rng.standard_normal(y.shape)
    assert_close(global_max_pool_backward(dy, cache), dx_of(dy))
    ties = rng.integers(0, 2, size=(3, 4, 5, 2)).astype(np.float32)
    y, cache = global_max_pool_forward(ties)
    expected, dx_of = ref.global_max_pool(ties)
    assert_close(y, expected) and assert_close(global_max_pool_backward(dy.astype(np.float32), cache), dx_of(dy),
                                               dtype=np.float32)
    gradcheck(lambda x: global_max_pool_forward(x)[0],
              lambda dy, x: {"x": global_max_pool_backward(dy, global_max_pool_forward(x)[1])},
              {"x": distinct_values(rng, (2, 3, 3, 2))}, rng=rng, mode="full")


def test_global_max_nan_wins():
    x = np.zeros((1, 2, 2, 2))
    x[0, 1, 0, 0] = np.nan
    x[0, 0, 1, 1] = 5.0
    y, cache = global_max_pool_forward(x)
    assert np.isnan(y[0, 0]) and y[0, 1] == 5.0
    dx = global_max_pool_backward(np.array([[1.0, 2.0]]), cache)
    assert dx[0, 1, 0, 0] == 1.0 and dx[0, 0, 1, 1] == 2.0 and np.count_nonzero(dx) == 2


def test_global_max_non_contiguous_input(rng):
    x = rng.standard_normal((2, 5, 6, 3))[:, ::2, 1:]
    y, cache = global_max_pool_forward(x)
    assert_close(y, x.max(axis=(1, 2)))
    assert global_max_pool_backward(np.ones_like(y), cache).shape == x.shape


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_global_max_and_lp_match_torch(dtype, rng, torch):
    x = distinct_values(rng, (2, 3, 4, 5), dtype=dtype)
    dy = rng.standard_normal((2, 5)).astype(dtype)
    y, cache = global_max_pool_forward(x)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    yt = torch.nn.functional.adaptive_max_pool2d(xt, 1).flatten(1)
    yt.backward(t(torch, dy))
    assert_close(y, n(yt), dtype=dtype)
    assert_close(global_max_pool_backward(dy, cache), nchw_to_nhwc(n(xt.grad)), dtype=dtype)
    for p in (1, 2, 3.5):
        y, cache = global_lp_pool_forward(x, p=p)
        xt = t(torch, nhwc_to_nchw(x), grad=True)
        yt = (xt.abs() ** p).sum(dim=(2, 3)) ** (1 / p)
        yt.backward(t(torch, dy))
        assert_close(y, n(yt), dtype=dtype)
        assert_close(global_lp_pool_backward(dy, cache), nchw_to_nhwc(n(xt.grad)), dtype=dtype)


@pytest.mark.parametrize("p", PS, ids=str)
def test_global_lp_is_lp_pooling_over_the_whole_map(p, rng):
    x = away_from_zero(rng, (2, 3, 4, 2), margin=1e-2)
    y, cache = global_lp_pool_forward(x, p=p)
    assert_close(y, ref.lp_pool2d(x, p=p, pool=(3, 4)).reshape(2, 2))
    gradcheck(lambda x: global_lp_pool_forward(x, p=p)[0],
              lambda dy, x: {"x": global_lp_pool_backward(dy, global_lp_pool_forward(x, p=p)[1])},
              {"x": x}, rng=rng, mode="full", rtol=1e-5)


def test_global_ops_check_their_inputs():
    for op in (global_max_pool_forward, global_lp_pool_forward):
        with pytest.raises(ShapeError, match="rank 4"):
            op(np.zeros((2, 3)))
    _, cache = global_max_pool_forward(np.zeros((2, 3, 3, 4)))
    with pytest.raises(ShapeError, match="forward output's shape"):
        global_max_pool_backward(np.zeros((2, 3)), cache)


# -- properties ---------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_property_dilated_pooling_matches_reference_or_raises(data):
    """Any pool size, stride, dilation, symmetric padding and fit: max, average and Lp pooling equal
    the reference loops, or the geometry is refused (GeometryError, or ConfigError for padding over
    half the dilated window)."""
    d = data.draw
    pool = (d(st.integers(1, 3)), d(st.integers(1, 3)))
    stride = (d(st.integers(1, 3)), d(st.integers(1, 3)))
    dilation = (d(st.integers(1, 3)), d(st.integers(1, 3)))
    padding = (d(st.integers(0, 2)), d(st.integers(0, 2)))
    fit = d(st.sampled_from(["error", "crop", "pad"]))
    shape = (d(st.integers(1, 2)), d(st.integers(1, 9)), d(st.integers(1, 9)), d(st.integers(1, 2)))
    rng = np.random.default_rng(d(st.integers(0, 2**31)))
    kwargs = dict(pool_size=pool, stride=stride, padding=padding, dilation=dilation, fit=fit)
    geo = explicit_geometry(shape[1:3], pool, stride=stride, padding=padding, dilation=dilation, fit=fit)
    eff = [dd * (k - 1) + 1 for dd, k in zip(dilation, pool)]
    x = rng.standard_normal(shape)
    if geo is None:
        with pytest.raises(GeometryError):
            max_pool2d_forward(x, **kwargs)
        return
    (ho, wo), pads = geo
    if any(p > e // 2 for p, e in zip(padding, eff)) or not all(
            _reads_input(n_out, shape[1 + a], stride[a], dilation[a], pool[a], pads[a][0]) for a, n_out
            in enumerate((ho, wo))):
        with pytest.raises(ConfigError, match="more than half|padding only"):
            max_pool2d_forward(x, **kwargs)
        return
    assume(all(pads[a][1] - padding[a] <= eff[a] // 2 for a in range(2)))  # fit="pad" rows count as padding too
    rk = dict(pool=pool, stride=stride, pads=pads, dilation=dilation)
    y, cache = max_pool2d_forward(x, **kwargs)
    assert y.shape == (shape[0], ho, wo, shape[3])
    assert_close(y, ref.max_pool2d(x, **rk))
    dy = rng.standard_normal(y.shape)
    assert_close(max_pool2d_backward(dy, cache), ref.max_pool2d_backward(x, dy, **rk))
    fit_extra = (pads[0][1] - padding[0], pads[1][1] - padding[1])
    ya, _ = avg_pool2d_forward(x, **kwargs)
    assert_close(ya, ref.avg_pool2d(x, pool=pool, stride=stride, pads=((padding[0],) * 2, (padding[1],) * 2),
                                    fit_extra=fit_extra, dilation=dilation))
    yl, _ = lp_pool2d_forward(x, p=3, **kwargs)
    assert_close(yl, ref.lp_pool2d(x, p=3, **rk))


def _reads_input(out, size, stride, dilation, kernel, before):
    """Every window has a tap on the input (written apart from ops/pool.py)."""
    return all(any(before <= o * stride + t * dilation < before + size for t in range(kernel)) for o in range(out))


# -- 1-D as H = 1 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1), dict(dilation=2, groups=2, padding=2)],
                         ids=["plain", "strided", "dilated_grouped"])
def test_conv1d_is_conv2d_with_height_one(kwargs, rng, torch):
    """Conv2D's op with kernel (1, k) on (N, 1, W, C) is conv1d on (N, C, W)."""
    n_, w_, c, k, ksize = 2, 11, 4, 6, 3
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((n_, 1, w_, c))
    w = rng.standard_normal((1, ksize, c // groups, k))
    b = rng.standard_normal(k)
    two_d = {key: ((1, v) if key in ("stride", "dilation") else (0, v) if key == "padding" else v)
             for key, v in kwargs.items()}
    y, cache = conv2d_forward(x, w, b, **two_d)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    xt = t(torch, x[:, 0].transpose(0, 2, 1), grad=True)  # (N, C, W)
    wt = t(torch, w[0].transpose(2, 1, 0), grad=True)  # (K, C/g, k)
    bt = t(torch, b, grad=True)
    yt = torch.nn.functional.conv1d(xt, wt, bt, **kwargs)
    yt.backward(t(torch, dy[:, 0].transpose(0, 2, 1)))
    assert_close(y[:, 0], n(yt).transpose(0, 2, 1))
    assert_close(dx[:, 0], n(xt.grad).transpose(0, 2, 1))
    assert_close(dw[0], n(wt.grad).transpose(2, 1, 0))
    assert_close(db, n(bt.grad))


def test_pool1d_is_pool2d_with_height_one(rng, torch):
    """Max and average pooling with a (1, k) window on (N, 1, W, C) are max_pool1d / avg_pool1d."""
    x = distinct_values(rng, (2, 1, 13, 3))
    xt = t(torch, x[:, 0].transpose(0, 2, 1), grad=True)
    y, cache = max_pool2d_forward(x, pool_size=(1, 3), stride=(1, 2), padding=(0, 1), dilation=(1, 2), fit="crop")
    dy = rng.standard_normal(y.shape)
    yt = torch.nn.functional.max_pool1d(xt, 3, stride=2, padding=1, dilation=2)
    yt.backward(t(torch, dy[:, 0].transpose(0, 2, 1)))
    assert_close(y[:, 0], n(yt).transpose(0, 2, 1))
    assert_close(max_pool2d_backward(dy, cache)[:, 0], n(xt.grad).transpose(0, 2, 1))
    y, cache = avg_pool2d_forward(x, pool_size=(1, 4), stride=(1, 3), fit="crop")
    xt.grad = None
    yt = torch.nn.functional.avg_pool1d(xt, 4, stride=3)
    yt.backward(t(torch, dy[:, 0, : y.shape[2]].transpose(0, 2, 1)))
    assert_close(y[:, 0], n(yt).transpose(0, 2, 1))
    assert_close(avg_pool2d_backward(dy[:, :, : y.shape[2]], cache)[:, 0], n(xt.grad).transpose(0, 2, 1))
