"""Max / average / L2 / global-average / fractional max pooling: reference, finite differences, PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, GeometryError, ShapeError
from convnet.ops import reference as ref
from convnet.ops.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)
from convnet.ops.pool_fractional import (
    fractional_max_pool2d_backward,
    fractional_max_pool2d_forward,
    fractional_output_size,
    fractional_starts,
)
from oracle import (
    assert_close,
    distinct_values,
    explicit_geometry,
    gradcheck,
    n,
    nchw_to_nhwc,
    nhwc_to_nchw,
    no_pool_ties,
    pair,
    require_torch,
    t,
)

# (name, shape, pool, kwargs): padding is symmetric here so that PyTorch can take it directly
CASES = [
    ("2x2s2", (2, 4, 6, 3), (2, 2), dict()),
    ("3x3s2_overlap", (1, 7, 7, 2), (3, 3), dict(stride=2)),
    ("nonsquare", (2, 7, 6, 2), (3, 2), dict(stride=(2, 1))),
    ("padded", (1, 5, 6, 2), (3, 3), dict(stride=2, padding=1, fit="crop")),
    ("pad_nonsquare", (2, 6, 5, 1), (2, 3), dict(stride=(2, 2), padding=(1, 1))),
    ("fit_crop", (1, 7, 8, 2), (2, 3), dict(stride=(2, 2), fit="crop")),
    ("fit_pad", (1, 7, 8, 2), (2, 3), dict(stride=(2, 2), fit="pad")),
    ("fit_pad_with_padding", (2, 6, 7, 2), (3, 3), dict(stride=2, padding=1, fit="pad")),
    ("fit_pad_fallback", (1, 5, 5, 1), (2, 2), dict(stride=2, padding=1, fit="pad")),
    ("stride1", (1, 4, 5, 2), (2, 2), dict(stride=1)),
]
IDS = [c[0] for c in CASES]


def geometry_of(shape, pool, kwargs):
    return explicit_geometry(shape[1:3], pool, stride=kwargs.get("stride", pool), padding=kwargs.get("padding", 0),
                             fit=kwargs.get("fit", "error"))


def stride_of(pool, kwargs):
    return pair(kwargs.get("stride", pool))


def user_pads(kwargs):
    p = pair(kwargs.get("padding", 0))
    return ((p[0], p[0]), (p[1], p[1]))


def fit_extra(shape, pool, kwargs):
    (_, ((_, pb), (_, pr))) = geometry_of(shape, pool, kwargs)
    (_, ub), (_, ur) = user_pads(kwargs)
    return (pb - ub, pr - ur)


# -- max pooling -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_forward_matches_reference(case, rng):
    _, shape, pool, kwargs = case
    x = rng.standard_normal(shape)
    y, cache = max_pool2d_forward(x, pool_size=pool, **kwargs)
    (ho, wo), pads = geometry_of(shape, pool, kwargs)
    expected = ref.max_pool2d(x, pool=pool, stride=stride_of(pool, kwargs), pads=pads)
    assert y.shape == (shape[0], ho, wo, shape[3])
    assert_close(y, expected)
    np.testing.assert_array_equal(max_pool2d(x, pool_size=pool, **kwargs), y)
    y32, _ = max_pool2d_forward(x.astype(np.float32), pool_size=pool, **kwargs)
    assert y32.dtype == np.float32
    np.testing.assert_array_equal(y32, expected.astype(np.float32))  # max is exact


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_backward_full_jacobian_away_from_ties(case, rng):
    _, shape, pool, kwargs = case
    _, pads = geometry_of(shape, pool, kwargs)
    x = no_pool_ties(rng, (1, *shape[1:]), pool=pool, stride=stride_of(pool, kwargs), pads=pads)

    def f(x):
        return max_pool2d_forward(x, pool_size=pool, **kwargs)[0]

    def vjp(dy, x):
        return {"x": max_pool2d_backward(dy, max_pool2d_forward(x, pool_size=pool, **kwargs)[1])}

    gradcheck(f, vjp, {"x": x}, rng=rng, mode="full")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_backward_ties_go_to_the_first_maximum(case, rng):
    """With many exact ties (values from {0, 1, 2}) the gradient goes to the first maximum, row-major."""
    _, shape, pool, kwargs = case
    _, pads = geometry_of(shape, pool, kwargs)
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    y, cache = max_pool2d_forward(x, pool_size=pool, **kwargs)
    dy = rng.standard_normal(y.shape)
    dx = max_pool2d_backward(dy, cache)
    expected = ref.max_pool2d_backward(x, dy, pool=pool, stride=stride_of(pool, kwargs), pads=pads)
    assert_close(dx, expected)


def test_max_backward_projection_larger(rng):
    shape, pool, kwargs = (3, 13, 11, 4), (3, 2), dict(stride=(2, 3), padding=1, fit="pad")
    _, pads = geometry_of(shape, pool, kwargs)
    x = no_pool_ties(rng, shape, pool=pool, stride=(2, 3), pads=pads)
    gradcheck(lambda x: max_pool2d_forward(x, pool_size=pool, **kwargs)[0],
              lambda dy, x: {"x": max_pool2d_backward(dy, max_pool2d_forward(x, pool_size=pool, **kwargs)[1])},
              {"x": x}, rng=rng, mode="projection")


def test_max_nan_propagates():
    x = np.zeros((1, 2, 2, 1))
    x[0, 1, 0, 0] = np.nan
    y, _ = max_pool2d_forward(x, pool_size=2)
    assert np.isnan(y).all()


def test_max_pool_224_to_112():
    x = np.zeros((1, 224, 224, 64), dtype=np.float32)
    assert max_pool2d(x, pool_size=2, stride=2).shape == (1, 112, 112, 64)


# -- average pooling --------------------------------------------------------------------------------
@pytest.mark.parametrize("include", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_forward_matches_reference(case, include, rng):
    _, shape, pool, kwargs = case
    x = rng.standard_normal(shape)
    y, _ = avg_pool2d_forward(x, pool_size=pool, count_include_pad=include, **kwargs)
    expected = ref.avg_pool2d(x, pool=pool, stride=stride_of(pool, kwargs), pads=user_pads(kwargs),
                              fit_extra=fit_extra(shape, pool, kwargs), count_include_pad=include)
    assert_close(y, expected)
    y32, _ = avg_pool2d_forward(x.astype(np.float32), pool_size=pool, count_include_pad=include, **kwargs)
    assert y32.dtype == np.float32
    assert_close(y32, expected, dtype=np.float32)


@pytest.mark.parametrize("include", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_backward_full_jacobian(case, include, rng):
    _, shape, pool, kwargs = case
    x = rng.standard_normal((1, *shape[1:]))
    kw = dict(pool_size=pool, count_include_pad=include, **kwargs)
    gradcheck(lambda x: avg_pool2d_forward(x, **kw)[0],
              lambda dy, x: {"x": avg_pool2d_backward(dy, avg_pool2d_forward(x, **kw)[1])},
              {"x": x}, rng=rng, mode="full")


# -- L2 pooling -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_l2_forward_and_backward(case, rng):
    _, shape, pool, kwargs = case
    x = rng.standard_normal(shape)
    y, _ = l2_pool2d_forward(x, pool_size=pool, **kwargs)
    _, pads = geometry_of(shape, pool, kwargs)
    assert_close(y, ref.l2_pool2d(x, pool=pool, stride=stride_of(pool, kwargs), pads=pads))
    gradcheck(lambda x: l2_pool2d_forward(x, pool_size=pool, **kwargs)[0],
              lambda dy, x: {"x": l2_pool2d_backward(dy, l2_pool2d_forward(x, pool_size=pool, **kwargs)[1])},
              {"x": x[:1]}, rng=rng, mode="full")


def test_l2_gradient_is_zero_where_the_window_is_zero():
    x = np.zeros((1, 4, 4, 1))
    x[0, 0, 0, 0] = 3.0
    y, cache = l2_pool2d_forward(x, pool_size=2)
    assert y[0, 0, 0, 0] == 3.0 and y[0, 1, 1, 0] == 0.0
    dx = l2_pool2d_backward(np.ones_like(y) * 2.0, cache)
    assert np.all(np.isfinite(dx))
    assert dx[0, 0, 0, 0] == 2.0 and np.count_nonzero(dx) == 1


# -- global average pooling -------------------------------------------------------------------------
def test_global_avg_pool(rng):
    x = rng.standard_normal((2, 3, 5, 4))
    y, cache = global_avg_pool_forward(x)
    assert y.shape == (2, 4)
    assert_close(y, ref.avg_pool2d(x, pool=(3, 5)).reshape(2, 4))
    gradcheck(lambda x: global_avg_pool_forward(x)[0],
              lambda dy, x: {"x": global_avg_pool_backward(dy, global_avg_pool_forward(x)[1])},
              {"x": x}, rng=rng, mode="full")


# -- property tests ---------------------------------------------------------------------------------
@st.composite
def pool_configs(draw):
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, pool[0] // 2)), draw(st.integers(0, pool[1] // 2)))
    fit = draw(st.sampled_from(["error", "crop", "pad"]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 3)))
    kwargs = dict(padding=padding, fit=fit)
    if stride is not None:
        kwargs["stride"] = stride
    return shape, pool, kwargs, draw(st.integers(0, 2**31))


@settings(max_examples=50, deadline=None)
@given(pool_configs())
def test_property_pools_match_reference_or_raise(config):
    shape, pool, kwargs, seed = config
    x = np.random.default_rng(seed).standard_normal(shape)
    geo = geometry_of(shape, pool, kwargs)
    if geo is None:
        for op in (max_pool2d_forward, avg_pool2d_forward, l2_pool2d_forward):
            with pytest.raises(GeometryError):
                op(x, pool_size=pool, **kwargs)
        return
    (ho, wo), pads = geo
    stride = stride_of(pool, kwargs)
    y, _ = max_pool2d_forward(x, pool_size=pool, **kwargs)
    assert y.shape == (shape[0], ho, wo, shape[3])
    assert_close(y, ref.max_pool2d(x, pool=pool, stride=stride, pads=pads))
    for include in (True, False):
        y, _ = avg_pool2d_forward(x, pool_size=pool, count_include_pad=include, **kwargs)
        assert_close(y, ref.avg_pool2d(x, pool=pool, stride=stride, pads=user_pads(kwargs),
                                       fit_extra=fit_extra(shape, pool, kwargs), count_include_pad=include))
    y, _ = l2_pool2d_forward(x, pool_size=pool, **kwargs)
    assert_close(y, ref.l2_pool2d(x, pool=pool, stride=stride, pads=pads))


# -- PyTorch ----------------------------------------------------------------------------------------
def _torch_pool(torch, kind, x, pool, kwargs, dy, include=True):
    F = torch.nn.functional
    stride = stride_of(pool, kwargs)
    padding = pair(kwargs.get("padding", 0))
    ceil = kwargs.get("fit", "error") == "pad"
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    if kind == "max":
        yt = F.max_pool2d(xt, pool, stride, padding, ceil_mode=ceil)
    elif kind == "avg":
        yt = F.avg_pool2d(xt, pool, stride, padding, ceil_mode=ceil, count_include_pad=include)
    else:
        assert padding == (0, 0) and not ceil
        yt = F.lp_pool2d(xt, 2, pool, stride)
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    return nchw_to_nhwc(n(yt)), nchw_to_nhwc(n(xt.grad))


def _ours(kind, x, pool, kwargs, include=True):
    if kind == "max":
        return max_pool2d_forward(x, pool_size=pool, **kwargs), max_pool2d_backward
    if kind == "avg":
        return avg_pool2d_forward(x, pool_size=pool, count_include_pad=include, **kwargs), avg_pool2d_backward
    return l2_pool2d_forward(x, pool_size=pool, **kwargs), l2_pool2d_backward


def _compare_with_torch(torch, kind, x, pool, kwargs, rng, include=True):
    dtype = x.dtype
    (y, cache), backward = _ours(kind, x, pool, kwargs, include)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = backward(dy, cache)
    ty, tdx = _torch_pool(torch, kind, x, pool, kwargs, dy, include)
    assert_close(y, ty, dtype=dtype, what=f"{kind} y")
    assert_close(dx, tdx, dtype=dtype, what=f"{kind} dx")
    assert y.dtype == dx.dtype == dtype


def _torch_can_l2(kwargs):
    return pair(kwargs.get("padding", 0)) == (0, 0) and kwargs.get("fit", "error") != "pad"


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case, dtype, rng, torch):
    _, shape, pool, kwargs = case
    _, pads = geometry_of(shape, pool, kwargs)
    x = no_pool_ties(rng, shape, pool=pool, stride=stride_of(pool, kwargs), pads=pads, dtype=dtype)
    _compare_with_torch(torch, "max", x, pool, kwargs, rng)
    _compare_with_torch(torch, "avg", x, pool, kwargs, rng, include=True)
    _compare_with_torch(torch, "avg", x, pool, kwargs, rng, include=False)
    if _torch_can_l2(kwargs):
        # lp_pool2d(p=2) has no padding; with ceil_mode it rescales partial windows, so floor only
        _compare_with_torch(torch, "l2", x, pool, kwargs, rng)


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_ties_match_torch(case, rng, torch):
    """PyTorch's CPU kernel also gives a tie to the first maximum in row-major order."""
    _, shape, pool, kwargs = case
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    _compare_with_torch(torch, "max", x, pool, kwargs, rng)


@pytest.mark.oracle
@settings(max_examples=40, deadline=None)
@given(pool_configs(), st.sampled_from([np.float64, np.float32]))
def test_property_pools_match_torch(config, dtype):
    torch = require_torch()
    shape, pool, kwargs, seed = config
    geo = geometry_of(shape, pool, kwargs)
    if geo is None:
        return
    rng = np.random.default_rng(seed)
    x = no_pool_ties(rng, shape, pool=pool, stride=stride_of(pool, kwargs), pads=geo[1], dtype=dtype)
    _compare_with_torch(torch, "max", x, pool, kwargs, rng)
    _compare_with_torch(torch, "avg", x, pool, kwargs, rng, include=True)
    _compare_with_torch(torch, "avg", x, pool, kwargs, rng, include=False)
    if _torch_can_l2(kwargs):
        _compare_with_torch(torch, "l2", x, pool, kwargs, rng)


@pytest.mark.oracle
def test_global_avg_pool_matches_torch(rng, torch):
    x = rng.standard_normal((2, 3, 5, 4))
    y, cache = global_avg_pool_forward(x)
    dy = rng.standard_normal(y.shape)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    yt = torch.nn.functional.adaptive_avg_pool2d(xt, 1).flatten(1)
    yt.backward(t(torch, dy))
    assert_close(y, n(yt))
    assert_close(global_avg_pool_backward(dy, cache), nchw_to_nhwc(n(xt.grad)))


# -- fractional max pooling -------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    u=st.floats(0, 1, exclude_max=True),
    size=st.integers(2, 40),
    pool=st.integers(1, 3),
    data=st.data(),
)
def test_fractional_starts_match_formula(u, size, pool, data):
    out = data.draw(st.integers(1, size - pool + 1)) if size >= pool else 1
    if size < pool:
        return
    starts = fractional_starts(np.array([u]), size, out, pool)[0]
    expected = ref.fractional_starts(u, size, out, pool)
    assert list(starts) == expected
    assert starts[-1] == size - pool
    if out > 1:
        assert starts[0] == 0
    assert np.all(np.diff(starts) >= 0)


def _fractional_setup(rng, shape, out, pool, dtype=np.float64):
    x = distinct_values(rng, shape, dtype=dtype)
    samples = rng.uniform(0, 1, size=(shape[0], shape[3], 2))
    rows = np.array([[ref.fractional_starts(samples[i, c, 0], shape[1], out[0], pool[0]) for c in range(shape[3])]
                     for i in range(shape[0])])
    cols = np.array([[ref.fractional_starts(samples[i, c, 1], shape[2], out[1], pool[1]) for c in range(shape[3])]
                     for i in range(shape[0])])
    return x, samples, rows, cols


FRACTIONAL = [
    ((2, 7, 9, 3), (5, 6), (2, 2)),
    ((1, 10, 8, 2), (6, 5), (2, 3)),
    ((2, 5, 5, 1), (3, 2), (3, 2)),
    ((1, 6, 4, 2), (1, 3), (2, 2)),
]


@pytest.mark.parametrize("shape, out, pool", FRACTIONAL)
def test_fractional_forward_matches_reference(shape, out, pool, rng):
    x, samples, rows, cols = _fractional_setup(rng, shape, out, pool)
    y, _ = fractional_max_pool2d_forward(x, samples=samples, output_size=out, pool_size=pool)
    assert y.shape == (shape[0], *out, shape[3])
    assert_close(y, ref.fractional_max_pool2d(x, rows, cols, pool=pool))


@pytest.mark.parametrize("shape, out, pool", FRACTIONAL)
def test_fractional_backward_full_jacobian(shape, out, pool, rng):
    x, samples, _, _ = _fractional_setup(rng, (1, *shape[1:]), out, pool)
    kw = dict(samples=samples, output_size=out, pool_size=pool)
    gradcheck(lambda x: fractional_max_pool2d_forward(x, **kw)[0],
              lambda dy, x: {"x": fractional_max_pool2d_backward(dy, fractional_max_pool2d_forward(x, **kw)[1])},
              {"x": x}, rng=rng, mode="full")


def test_fractional_ties_go_to_the_first_maximum(rng):
    x = np.zeros((1, 5, 5, 1))  # every window is one big tie
    samples = np.full((1, 1, 2), 0.3)
    y, cache = fractional_max_pool2d_forward(x, samples=samples, output_size=(3, 3))
    dy = rng.standard_normal(y.shape)
    dx = fractional_max_pool2d_backward(dy, cache)
    rows = ref.fractional_starts(0.3, 5, 3, 2)
    expected = np.zeros_like(x)
    for i, r in enumerate(rows):
        for j, q in enumerate(rows):
            expected[0, r, q, 0] += dy[0, i, j, 0]
    assert_close(dx, expected)


def test_fractional_output_size_from_ratio():
    assert fractional_output_size((10, 7), ratio=0.7) == (7, 4)
    assert fractional_output_size((10, 7), ratio=(0.5, 0.6)) == (5, 4)
    assert fractional_output_size((10, 7), output_size=(3, 5)) == (3, 5)
    with pytest.raises(ShapeError, match="height"):
        fractional_output_size((4, 7), output_size=(4, 2))
    with pytest.raises(ConfigError, match="exactly one"):
        fractional_output_size((4, 7))
    with pytest.raises(ConfigError, match="ratio"):
        fractional_output_size((4, 7), ratio=1.5)


def _float32_safe_samples(rng, shape, out, pool):
    """Samples whose starts come out the same whether computed in float32 (PyTorch) or float64."""
    while True:
        s = rng.uniform(0, 1, size=(shape[0], shape[3], 2)).astype(np.float32)
        ok = True
        for axis, size in ((0, shape[1]), (1, shape[2])):
            o, f = out[axis], pool[axis]
            if o == 1:
                continue
            u32 = s[..., axis]
            alpha32 = np.float32(size - f) / np.float32(o - 1)
            i = np.arange(o - 1, dtype=np.float32)
            s32 = (np.floor((i + u32[..., None]) * alpha32) - np.floor(u32 * alpha32)[..., None])
            s64 = fractional_starts(u32.astype(np.float64), size, o, f)[..., :-1]
            ok &= bool(np.all(s32 == s64))
        if ok:
            return s.astype(np.float64)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape, out, pool", FRACTIONAL)
def test_fractional_matches_torch(shape, out, pool, dtype, rng, torch):
    x = distinct_values(rng, shape, dtype=dtype)
    samples = _float32_safe_samples(rng, shape, out, pool)
    y, cache = fractional_max_pool2d_forward(x, samples=samples, output_size=out, pool_size=pool)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = fractional_max_pool2d_backward(dy, cache)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    # PyTorch's _random_samples[..., 0] is the WIDTH sample: swap ours (height first)
    ts = t(torch, samples[..., ::-1].astype(dtype))
    yt = torch.nn.functional.fractional_max_pool2d(xt, pool, output_size=out, _random_samples=ts)
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)), dtype=dtype, what="y")
    assert_close(dx, nchw_to_nhwc(n(xt.grad)), dtype=dtype, what="dx")
    assert y.dtype == dx.dtype == dtype


def test_non_contiguous_inputs(rng):
    """Views (an NCHW array transposed to NHWC, reversed and strided slices) give the same answers."""
    x = rng.standard_normal((2, 3, 9, 8)).transpose(0, 2, 3, 1)[:, ::-1, ::2]
    xc = np.ascontiguousarray(x)
    assert not x.flags["C_CONTIGUOUS"]
    for forward, backward, kw in (
        (max_pool2d_forward, max_pool2d_backward, dict(pool_size=2, fit="crop")),
        (avg_pool2d_forward, avg_pool2d_backward, dict(pool_size=(3, 2), stride=(2, 1), padding=1, fit="pad")),
        (l2_pool2d_forward, l2_pool2d_backward, dict(pool_size=2, stride=1)),
        (fractional_max_pool2d_forward, fractional_max_pool2d_backward,
         dict(samples=rng.uniform(size=(2, 3, 2)), output_size=(5, 3))),
    ):
        y, cache = forward(x, **kw)
        yc, cache_c = forward(xc, **kw)
        np.testing.assert_array_equal(y, yc)
        dy = np.asfortranarray(rng.standard_normal(y.shape))
        assert_close(backward(dy, cache), backward(np.ascontiguousarray(dy), cache_c))
