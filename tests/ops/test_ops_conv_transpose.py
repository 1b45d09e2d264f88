"""conv_transpose2d (issue 16): forward vs the scatter loops of ``reference.py``, the adjoint of
conv2d (``<T(x), z> = <x, conv(z)>`` with the same weights), backward vs finite differences with a
random dy, and PyTorch's ``conv_transpose2d`` (asymmetric pads as PyTorch's full output cropped) —
each with the compiled forward (numba's col2im gather) and the readable one (GEMM + col2im)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, DTypeError, GeometryError, ShapeError
from convnet.ops import conv as plain
from convnet.ops import reference as ref
from convnet.ops.conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward
from convnet.ops.geometry import conv_transpose_geometry
from oracle import assert_close, gradcheck, n, nchw_to_nhwc, nhwc_to_nchw, t


@pytest.fixture(params=["compiled", "numpy"])
def numba(request, monkeypatch):
    """Each test twice: the compiled forward (numba's col2im gather, ungrouped) and the readable one."""
    monkeypatch.setenv("CONVNET_NUMBA", "1" if request.param == "compiled" else "0")
    return request.param


# (name, N, H, W, C_in, C_out, (kh, kw), kwargs)
CASES = [
    ("basic", 2, 3, 4, 3, 2, (3, 3), dict()),
    ("dcgan_up2", 2, 4, 4, 4, 3, (4, 4), dict(stride=2, padding=1)),
    ("nonsquare", 1, 3, 5, 2, 3, (3, 2), dict(stride=(2, 1), padding=(1, 0))),
    ("asym_pads", 2, 4, 3, 2, 2, (3, 3), dict(stride=2, padding=((0, 2), (1, 0)))),
    ("output_padding", 1, 3, 4, 2, 2, (3, 3), dict(stride=(2, 3), padding=1, output_padding=(1, 2))),
    ("dilation", 2, 3, 3, 2, 3, (3, 2), dict(dilation=(2, 3), padding=(1, 2))),
    ("op_over_stride", 1, 3, 4, 2, 2, (2, 3), dict(dilation=3, output_padding=(2, 1))),
    ("groups2", 2, 3, 4, 4, 6, (3, 3), dict(stride=2, groups=2, padding=1)),
    ("depthwise", 1, 4, 3, 3, 3, (2, 2), dict(stride=2, groups=3)),
    ("no_bias", 2, 3, 3, 3, 2, (2, 2), dict(stride=2, bias=False)),
    ("one_by_one", 2, 3, 4, 3, 5, (1, 1), dict()),
    ("batch1_odd", 1, 5, 1, 1, 1, (3, 1), dict(stride=(1, 2), padding=(1, 0))),
]
IDS = [c[0] for c in CASES]


def make(case, rng, dtype=np.float64):
    _, n_, h, w, c_in, c_out, (kh, kw), kwargs = case
    kwargs = dict(kwargs)
    bias = kwargs.pop("bias", True)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((n_, h, w, c_in)).astype(dtype)
    wt = rng.standard_normal((kh, kw, c_out // groups, c_in)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if bias else None
    return x, wt, b, kwargs


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pads(padding):
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if all(isinstance(p, int) for p in padding):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return tuple(tuple(p) for p in padding)


def reference(x, w, b, kwargs):
    return ref.conv_transpose2d(x, w, b, stride=_pair(kwargs.get("stride", 1)), pads=_pads(kwargs.get("padding", 0)),
                                output_padding=_pair(kwargs.get("output_padding", 0)),
                                dilation=_pair(kwargs.get("dilation", 1)), groups=kwargs.get("groups", 1))


def expected_hw(x, w, kwargs):
    (pt, pb), (pl, pr) = _pads(kwargs.get("padding", 0))
    (sh, sw), (dh, dw) = _pair(kwargs.get("stride", 1)), _pair(kwargs.get("dilation", 1))
    oph, opw = _pair(kwargs.get("output_padding", 0))
    return ((x.shape[1] - 1) * sh - pt - pb + dh * (w.shape[0] - 1) + 1 + oph,
            (x.shape[2] - 1) * sw - pl - pr + dw * (w.shape[1] - 1) + 1 + opw)


# -- forward ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_reference(case, rng, numba):
    x, w, b, kwargs = make(case, rng)
    y, cache = conv_transpose2d_forward(x, w, b, **kwargs)
    assert y.shape == (x.shape[0], *expected_hw(x, w, kwargs), w.shape[2] * kwargs.get("groups", 1))
    assert y.dtype == np.float64
    assert_close(y, reference(x, w, b, kwargs), what="y")
    y32, _ = conv_transpose2d_forward(x.astype(np.float32), w.astype(np.float32),
                                      None if b is None else b.astype(np.float32), **kwargs)
    assert y32.dtype == np.float32
    assert_close(y32, reference(x, w, b, kwargs), dtype=np.float32, what="y32")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_is_the_adjoint_of_conv2d(case, rng, numba):
    """``<T(x), z> == <x, conv2d(z)>`` for the readable conv2d with the same w, pads, stride,
    dilation and groups (fit="crop": the output_padding rows are read by no window)."""
    x, w, _, kwargs = make(case, rng)
    y, _ = conv_transpose2d_forward(x, w, **kwargs)
    z = rng.standard_normal(y.shape)
    conv_kwargs = {k: v for k, v in kwargs.items() if k != "output_padding"}
    conv_kwargs["padding"] = _pads(kwargs.get("padding", 0))
    cz, _ = plain.conv2d_forward(z, w, **conv_kwargs, fit="crop")
    cz = cz[:, : x.shape[1], : x.shape[2]]
    assert cz.shape == x.shape
    lhs, rhs = float(np.sum(y * z)), float(np.sum(x * cz))
    assert abs(lhs - rhs) <= 1e-10 * (np.abs(y * z).sum() + 1)


# -- backward ---------------------------------------------------------------------------------------
def _fns(kwargs, bias):
    def f(x, w, b=None):
        return conv_transpose2d_forward(x, w, b if bias else None, **kwargs)[0]

    def vjp(dy, x, w, b=None):
        _, cache = conv_transpose2d_forward(x, w, b if bias else None, **kwargs)
        dx, dw, db = conv_transpose2d_backward(dy, cache)
        return {"x": dx, "w": dw, "b": db}

    return f, vjp


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_full_jacobian_tiny(case, rng, numba):
    x, w, b, kwargs = make(case, rng)
    f, vjp = _fns(kwargs, b is not None)
    arrays = {"x": x[:1], "w": w} if b is None else {"x": x[:1], "w": w, "b": b}
    gradcheck(f, vjp, arrays, rng=rng, mode="auto", max_full=300)


@pytest.mark.parametrize("shape, kernel, c_out, kwargs", [
    ((3, 6, 5, 4), (3, 3), 6, dict(stride=(2, 1), padding=((1, 2), (0, 1)), groups=2, dilation=(1, 2))),
    ((2, 5, 7, 3), (5, 4), 4, dict(stride=(3, 2), padding=2, output_padding=(2, 1))),
    ((2, 6, 6, 6), (3, 3), 6, dict(stride=2, padding=1, groups=6, output_padding=1)),
    ((4, 5, 7, 8), (1, 1), 5, dict()),
    ((2, 7, 7, 16), (3, 3), 16, dict(padding=1)),  # the backward conv is Winograd's / direct's shape
])
def test_backward_random_projections(shape, kernel, c_out, kwargs, rng, numba):
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, c_out // kwargs.get("groups", 1), shape[3]))
    b = rng.standard_normal(c_out)
    f, vjp = _fns(kwargs, True)
    gradcheck(f, vjp, {"x": x, "w": w, "b": b}, rng=rng, mode="projection", projections=3)


def test_need_dx_false_skips_the_data_gradient(rng):
    x, w, b, kwargs = make(CASES[1], rng)
    y, cache = conv_transpose2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape)
    full = conv_transpose2d_backward(dy, cache)
    dx, dw, db = conv_transpose2d_backward(dy, cache, need_dx=False)
    assert dx is None
    assert_close(dw, full[1]) and assert_close(db, full[2])


def test_backward_does_not_modify_its_inputs(rng, numba):
    x, w, b, kwargs = make(CASES[7], rng)
    copies = [a.copy() for a in (x, w, b)]
    y, cache = conv_transpose2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape)
    dy0 = dy.copy()
    conv_transpose2d_backward(dy, cache)
    for a, c in zip((x, w, b, dy), (*copies, dy0)):
        np.testing.assert_array_equal(a, c)


def test_workspace_chunks_give_the_same_answer(rng, numba):
    x, w, b, kwargs = make(CASES[7], rng)
    x = np.concatenate([x, x[::-1]])
    y1, c1 = conv_transpose2d_forward(x, w, b, **kwargs)
    y2, c2 = conv_transpose2d_forward(x, w, b, **kwargs, workspace_bytes=1)  # one image a chunk
    assert_close(y2, y1)
    dy = rng.standard_normal(y1.shape)
    for g1, g2 in zip(conv_transpose2d_backward(dy, c1), conv_transpose2d_backward(dy, c2)):
        assert_close(g2, g1)


# -- PyTorch ----------------------------------------------------------------------------------------
def torch_conv_transpose(torch, x, w, b, kwargs, dy=None):
    """PyTorch's conv_transpose2d on NCHW with its weight ``(C_in, C_out/g, kh, kw)`` = ours
    ``.transpose(3, 2, 0, 1)``; pads as the full output (padding 0) cropped, so that asymmetric pads
    are PyTorch's too.  Returns ``(y, dx, dw, db)`` in our layouts."""
    (pt, pb), (pl, pr) = _pads(kwargs.get("padding", 0))
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    wt = t(torch, np.ascontiguousarray(w.transpose(3, 2, 0, 1)), grad=True)
    bt = None if b is None else t(torch, b, grad=True)
    full = torch.nn.functional.conv_transpose2d(
        xt, wt, bt, stride=_pair(kwargs.get("stride", 1)), padding=0,
        output_padding=_pair(kwargs.get("output_padding", 0)), dilation=_pair(kwargs.get("dilation", 1)),
        groups=kwargs.get("groups", 1))
    yt = full[:, :, pt : full.shape[2] - pb, pl : full.shape[3] - pr]
    y = nchw_to_nhwc(n(yt))
    if dy is None:
        return y, None, None, None
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    return (y, nchw_to_nhwc(n(xt.grad)), np.ascontiguousarray(n(wt.grad).transpose(2, 3, 1, 0)),
            None if bt is None else n(bt.grad))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case, dtype, rng, torch, numba):
    x, w, b, kwargs = make(case, rng, dtype)
    y, cache = conv_transpose2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    yt, dxt, dwt, dbt = torch_conv_transpose(torch, x, w, b, kwargs, dy)
    assert_close(y, yt, dtype=dtype, what="y")
    dx, dw, db = conv_transpose2d_backward(dy, cache)
    assert dx.dtype == dw.dtype == dtype
    # float32 sums of many products: relative to the terms' scale
    assert_close(dx, dxt, dtype=dtype, rtol=None if dtype == np.float64 else 1e-4, what="dx")
    assert_close(dw, dwt, dtype=dtype, rtol=None if dtype == np.float64 else 1e-4, what="dw")
    if b is not None:
        assert_close(db, dbt, dtype=dtype, rtol=None if dtype == np.float64 else 1e-4, what="db")


def test_torch_module_weights_load_by_one_transpose(rng, torch):
    """ConvTranspose2d's weight (C_in, C_out/g, kh, kw) → ours (kh, kw, C_out/g, C_in)."""
    module = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1, groups=2).double()
    x = rng.standard_normal((2, 5, 4, 4))
    w = np.ascontiguousarray(n(module.weight).transpose(2, 3, 1, 0))
    y, _ = conv_transpose2d_forward(x, w, n(module.bias), stride=2, padding=1, output_padding=1, groups=2)
    assert_close(y, nchw_to_nhwc(n(module(t(torch, nhwc_to_nchw(x))))))


# -- properties ---------------------------------------------------------------------------------------
@st.composite
def configs(draw):
    groups = draw(st.integers(1, 2))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(tuple(draw(st.integers(0, 2)) for _ in range(2)) for _ in range(2))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4)), c_in)
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31))
    kwargs = dict(stride=stride, padding=pads, output_padding=output_padding, dilation=dilation, groups=groups)
    return shape, c_out, kernel, kwargs, bias, seed


@settings(max_examples=60, deadline=None)
@given(configs())
def test_property_matches_reference_and_adjoint_or_raises(config):
    """Any geometry: the output has the documented size and the reference's values, or (an empty
    output) GeometryError; dx and dw satisfy the chain rule against random directions."""
    shape, c_out, kernel, kwargs, bias, seed = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, c_out // kwargs["groups"], shape[3]))
    b = rng.standard_normal(c_out) if bias else None
    ho, wo = expected_hw(x, w, kwargs)
    if ho < 1 or wo < 1:
        with pytest.raises(GeometryError, match="output rows"):
            conv_transpose2d_forward(x, w, b, **kwargs)
        return
    y, cache = conv_transpose2d_forward(x, w, b, **kwargs)
    assert y.shape == (shape[0], ho, wo, c_out)
    assert_close(y, reference(x, w, b, kwargs))
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv_transpose2d_backward(dy, cache)
    # the op is linear in x and in w: <dy, T(v, w)> = <dx, v> and <dy, T(x, u)> = <dw, u>
    v, u = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    tv, _ = conv_transpose2d_forward(v, w, **kwargs)
    tu, _ = conv_transpose2d_forward(x, u, **kwargs)
    for lhs, rhs, terms in ((np.sum(dy * tv), np.sum(dx * v), np.abs(dy * tv).sum()),
                            (np.sum(dy * tu), np.sum(dw * u), np.abs(dy * tu).sum())):
        assert abs(lhs - rhs) <= 1e-10 * (terms + 1)
    if bias:
        assert_close(db, dy.sum(axis=(0, 1, 2)))


@settings(max_examples=25, deadline=None)
@given(config=configs())
def test_property_matches_torch(torch, config):
    shape, c_out, kernel, kwargs, bias, seed = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, c_out // kwargs["groups"], shape[3]))
    b = rng.standard_normal(c_out) if bias else None
    assume(min(expected_hw(x, w, kwargs)) >= 1)
    y, cache = conv_transpose2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape)
    yt, dxt, dwt, dbt = torch_conv_transpose(torch, x, w, b, kwargs, dy)
    assert_close(y, yt)
    dx, dw, db = conv_transpose2d_backward(dy, cache)
    assert_close(dx, dxt) and assert_close(dw, dwt)
    if bias:
        assert_close(db, dbt)


# -- errors -----------------------------------------------------------------------------------------
X = np.zeros((1, 3, 3, 4))
W = np.zeros((3, 3, 2, 4))


@pytest.mark.parametrize("call, error, match", [
    (lambda: conv_transpose2d_forward(X, W, stride=2, output_padding=2), ConfigError, "output_padding 2"),
    (lambda: conv_transpose2d_forward(X, W, output_padding=1), ConfigError, "smaller than the stride"),
    (lambda: conv_transpose2d_forward(X, W, padding="same"), ConfigError, "'same' is not defined"),
    (lambda: conv_transpose2d_forward(X, W, padding=3), GeometryError, "expected at least 1"),
    (lambda: conv_transpose2d_forward(X, np.zeros((3, 3, 2, 5))), ShapeError, "C_in=4"),
    (lambda: conv_transpose2d_forward(X, W, groups=3), ConfigError, "divisible by groups=3"),
    (lambda: conv_transpose2d_forward(X, W, np.zeros(3)), ShapeError, r"shape \(2,\)"),
    (lambda: conv_transpose2d_forward(X, W.astype(np.float32)), DTypeError, "same"),
    (lambda: conv_transpose2d_forward(X[0], W), ShapeError, "rank 4"),
])
def test_bad_arguments_raise_one_sentence(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_backward_checks_dy(rng):
    _, cache = conv_transpose2d_forward(X, W, stride=2)
    with pytest.raises(ShapeError, match="forward output's shape"):
        conv_transpose2d_backward(np.zeros((1, 6, 6, 2)), cache)


def test_geometry_names_both_sizes():
    g = conv_transpose_geometry((4, 5), (4, 3), stride=(2, 1), padding=((1, 0), (0, 2)), output_padding=(1, 0))
    assert (g.height.size, g.width.size) == (3 * 2 - 1 + 4 + 1, 4 - 2 + 3)
    assert g.out_hw == (4, 5) and g.pads == ((1, 0), (0, 2))
