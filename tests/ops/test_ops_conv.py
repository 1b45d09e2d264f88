"""conv2d: forward vs the reference loops, backward vs finite differences, both vs PyTorch — the
readable op (``convnet.ops.conv``) and the fast one (``convnet.ops.fast``, what the layers run), and
the fast one against the readable one on the same inputs."""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, GeometryError
from convnet.ops import conv as plain
from convnet.ops import fast
from convnet.ops import reference as ref
from convnet.ops.fast import conv2d_backward, conv2d_forward
from oracle import (
    assert_close,
    explicit_geometry,
    gradcheck,
    hwio_to_oihw,
    n,
    nchw_to_nhwc,
    nhwc_to_nchw,
    oihw_to_hwio,
    require_torch,
    t,
)

# (name, N, H, W, C, K, (kh, kw), kwargs)
CASES = [
    ("basic", 2, 5, 5, 3, 2, (3, 3), dict(stride=1, padding=0)),
    ("nonsquare", 1, 7, 6, 2, 3, (3, 2), dict(stride=(2, 1), padding=(1, 0))),
    ("dilation", 2, 7, 8, 2, 2, (3, 3), dict(stride=1, padding=1, dilation=(2, 1))),
    ("groups2", 2, 5, 6, 4, 6, (3, 3), dict(stride=1, padding=1, groups=2)),
    ("depthwise", 1, 7, 5, 3, 3, (3, 3), dict(stride=2, padding=1, groups=3)),
    ("asym_pads", 2, 4, 6, 2, 2, (2, 3), dict(stride=(1, 2), padding=((0, 1), (2, 1)))),
    ("fit_crop", 1, 8, 7, 2, 2, (3, 3), dict(stride=2, padding=0, fit="crop")),
    ("fit_pad", 1, 8, 8, 2, 2, (3, 3), dict(stride=2, padding=0, fit="pad")),
    ("gemm1x1", 2, 3, 4, 3, 5, (1, 1), dict()),
    ("1x1_stride2", 1, 5, 5, 3, 2, (1, 1), dict(stride=2)),
    ("1x1_strides_crop", 2, 6, 7, 3, 4, (1, 1), dict(stride=(2, 3), fit="crop")),
    ("no_bias", 2, 4, 4, 2, 3, (2, 2), dict(stride=2, bias=False)),
    ("same_even_kernel", 1, 6, 5, 2, 2, (4, 2), dict(padding="same")),
    ("batch1_odd", 1, 5, 3, 1, 1, (3, 1), dict(stride=(1, 2), padding=(0, 1))),
]
IDS = [c[0] for c in CASES]


@pytest.fixture(params=["plain", "fast"])
def op(request):
    """The readable op and the fast one: each test below runs on both."""
    return plain if request.param == "plain" else fast


def make(case, rng, dtype=np.float64):
    _, n_, h, w, c, k, (kh, kw), kwargs = case
    kwargs = dict(kwargs)
    bias = kwargs.pop("bias", True)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((n_, h, w, c)).astype(dtype)
    wt = rng.standard_normal((kh, kw, c // groups, k)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    return x, wt, b, kwargs


def reference(x, w, b, kwargs):
    geo = explicit_geometry(
        x.shape[1:3], w.shape[:2], stride=kwargs.get("stride", 1), padding=kwargs.get("padding", 0),
        dilation=kwargs.get("dilation", 1), fit=kwargs.get("fit", "error"),
    )
    assert geo is not None
    (ho, wo), pads = geo
    s = kwargs.get("stride", 1)
    d = kwargs.get("dilation", 1)
    y = ref.conv2d(x, w, b, stride=(s, s) if isinstance(s, int) else s, pads=pads,
                   dilation=(d, d) if isinstance(d, int) else d, groups=kwargs.get("groups", 1))
    assert y.shape[1:3] == (ho, wo)
    return y, pads


# -- forward vs reference ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_reference_float64(case, rng, op):
    x, w, b, kwargs = make(case, rng)
    y, cache = op.conv2d_forward(x, w, b, **kwargs)
    expected, _ = reference(x, w, b, kwargs)
    assert y.dtype == np.float64
    assert_close(y, expected, what="y")
    one_by_one = case[0] in ("gemm1x1", "1x1_stride2", "1x1_strides_crop")  # unpadded 1×1, any stride
    assert cache.algorithm == ("gemm1x1" if one_by_one and op is fast else "im2col")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_float32_matches_reference(case, rng, op):
    x, w, b, kwargs = make(case, rng, np.float32)
    y, _ = op.conv2d_forward(x, w, b, **kwargs)
    expected, _ = reference(x, w, b, kwargs)
    assert y.dtype == np.float32
    assert_close(y, expected, dtype=np.float32, what="y")


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    c = groups * draw(st.integers(1, 2))
    k = groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(
        st.one_of(
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
            st.just("same"),
            st.just("valid"),
        )
    )
    fit = draw(st.sampled_from(["error", "crop", "pad"]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 8)), draw(st.integers(1, 8)), c)
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31))
    return shape, k, kernel, dict(stride=stride, padding=padding, dilation=dilation, groups=groups, fit=fit), bias, seed


def skip_same_padding_bug(shape, kernel, kwargs):
    """padding='same' with a kernel extent below the stride on a size the stride does not divide
    raises GeometryError today (see test_ops_geometry.test_same_padding_*, which pin that bug).
    Skipped here so one bug does not fail three tests at random; remove once geometry.py is fixed."""
    if kwargs["padding"] != "same":
        return
    for size, f, s, d in zip(shape[1:3], kernel, kwargs["stride"], kwargs["dilation"]):
        eff = d * (f - 1) + 1
        clamped = (-(-size // s) - 1) * s + eff - size < 0  # the total 'same' padding came out negative
        if clamped and (size - eff) % s:
            assume(False)


@settings(max_examples=50, deadline=None)
@given(conv_configs())
def test_property_forward_matches_reference_or_raises(config):
    """Both ops against the reference loops (or both raise); the fast op's gradients against the
    readable op's for a random dy, float64, to 1e-10."""
    shape, k, kernel, kwargs, bias, seed = config
    skip_same_padding_bug(shape, kernel, kwargs)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, shape[3] // kwargs["groups"], k))
    b = rng.standard_normal(k) if bias else None
    geo = explicit_geometry(shape[1:3], kernel, stride=kwargs["stride"], padding=kwargs["padding"],
                            dilation=kwargs["dilation"], fit=kwargs["fit"])
    if geo is None:
        for module in (plain, fast):
            with pytest.raises(GeometryError):
                module.conv2d_forward(x, w, b, **kwargs)
        return
    (ho, wo), pads = geo
    y, cache = conv2d_forward(x, w, b, **kwargs)
    y_plain, cache_plain = plain.conv2d_forward(x, w, b, **kwargs)
    assert y.shape == y_plain.shape == (shape[0], ho, wo, k)
    expected = ref.conv2d(x, w, b, stride=kwargs["stride"], pads=pads, dilation=kwargs["dilation"],
                          groups=kwargs["groups"])
    assert_close(y, expected, what="y")
    assert_close(y_plain, expected, what="y")
    dy = rng.standard_normal(y.shape)
    for got, want, what in zip(conv2d_backward(dy, cache), plain.conv2d_backward(dy, cache_plain), "dx dw db".split()):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max(), err_msg=what)


def test_workspace_chunking_gives_the_same_answer(rng, op):
    x = rng.standard_normal((5, 6, 6, 4))
    w = rng.standard_normal((3, 3, 2, 4))
    b = rng.standard_normal(4)
    dy = rng.standard_normal((5, 6, 6, 4))
    y1, c1 = op.conv2d_forward(x, w, b, padding=1, groups=2)
    y2, c2 = op.conv2d_forward(x, w, b, padding=1, groups=2, workspace_bytes=1)  # one sample per chunk
    y3, c3 = op.conv2d_forward(x, w, b, padding=1, groups=2, workspace_bytes=2 * 36 * 9 * 4 * 8)  # two per chunk
    assert_close(y2, y1) and assert_close(y3, y1)
    g1, g2, g3 = op.conv2d_backward(dy, c1), op.conv2d_backward(dy, c2), op.conv2d_backward(dy, c3)
    for a, b_, c in zip(g1, g2, g3):
        assert_close(b_, a) and assert_close(c, a)


def test_crop_rows_get_zero_gradient(rng, op):
    x = rng.standard_normal((1, 8, 7, 2))
    w = rng.standard_normal((3, 3, 2, 2))
    y, cache = op.conv2d_forward(x, w, None, stride=2, fit="crop")
    assert y.shape == (1, 3, 3, 2)
    dx, dw, db = op.conv2d_backward(rng.standard_normal(y.shape), cache)
    assert db is None
    assert np.all(dx[:, 7:, :, :] == 0)  # row 7 is read by no window
    assert np.any(dx[:, 6, :, :] != 0)


def test_backward_does_not_modify_inputs(rng, op):
    x = rng.standard_normal((2, 5, 5, 2))
    w = rng.standard_normal((3, 3, 2, 3))
    b = rng.standard_normal(3)
    copies = [a.copy() for a in (x, w, b)]
    y, cache = op.conv2d_forward(x, w, b, padding=1)
    dy = rng.standard_normal(y.shape)
    dy0 = dy.copy()
    op.conv2d_backward(dy, cache)
    for a, c in zip((x, w, b, dy), (*copies, dy0)):
        np.testing.assert_array_equal(a, c)


# -- backward vs finite differences -------------------------------------------------------------------
def _fns(kwargs, bias, op=fast):
    def f(x, w, b=None):
        return op.conv2d_forward(x, w, b if bias else None, **kwargs)[0]

    def vjp(dy, x, w, b=None):
        _, cache = op.conv2d_forward(x, w, b if bias else None, **kwargs)
        dx, dw, db = op.conv2d_backward(dy, cache)
        return {"x": dx, "w": dw, "b": db}

    return f, vjp


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_full_jacobian_tiny(case, rng, op):
    x, w, b, kwargs = make(case, rng)
    # shrink the batch to one sample for the full Jacobian
    x = x[:1]
    f, vjp = _fns(kwargs, b is not None, op)
    arrays = {"x": x, "w": w} if b is None else {"x": x, "w": w, "b": b}
    assert gradcheck(f, vjp, arrays, rng=rng, mode="full") == "full"


@pytest.mark.parametrize(
    "shape, kernel, k, kwargs",
    [
        ((3, 9, 10, 4), (3, 3), 6, dict(stride=(2, 1), padding=((1, 1), (0, 2)), groups=2, dilation=(1, 2))),
        ((2, 11, 9, 3), (5, 4), 4, dict(stride=(3, 2), padding=2, fit="pad")),
        ((2, 12, 12, 6), (3, 3), 6, dict(stride=2, padding="same", groups=6)),
        ((4, 5, 7, 8), (1, 1), 5, dict()),
    ],
)
def test_backward_random_projections(shape, kernel, k, kwargs, rng, op):
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, shape[3] // kwargs.get("groups", 1), k))
    b = rng.standard_normal(k)
    f, vjp = _fns(kwargs, True, op)
    assert gradcheck(f, vjp, {"x": x, "w": w, "b": b}, rng=rng, mode="projection", projections=3) == "projection"


def test_float32_gradients_match_float64(rng, op):
    x = rng.standard_normal((2, 7, 6, 4))
    w = rng.standard_normal((3, 2, 2, 4))
    b = rng.standard_normal(4)
    kwargs = dict(stride=(2, 1), padding=1, groups=2, fit="crop")
    y64, c64 = op.conv2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y64.shape)
    g64 = op.conv2d_backward(dy, c64)
    y32, c32 = op.conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), **kwargs)
    g32 = op.conv2d_backward(dy.astype(np.float32), c32)
    assert_close(y32, y64, dtype=np.float32)
    for a, e in zip(g32, g64):
        assert a.dtype == np.float32
        assert_close(a, e, dtype=np.float32)


# -- PyTorch ----------------------------------------------------------------------------------------
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@contextlib.contextmanager
def _native_convolution(torch):
    """PyTorch's own convolution instead of oneDNN's (whose flags() warns, on a CPU-only build, that
    TF32 needs an Intel GPU: that warning is silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def torch_conv(torch, x, w, b, kwargs, dy):
    """Forward and gradients of torch.nn.functional.conv2d on NCHW/OIHW copies, back in NHWC/HWIO."""
    F = torch.nn.functional
    geo = explicit_geometry(x.shape[1:3], w.shape[:2], stride=kwargs.get("stride", 1),
                            padding=kwargs.get("padding", 0), dilation=kwargs.get("dilation", 1),
                            fit=kwargs.get("fit", "error"))
    (_, _), ((pt, pb), (pl, pr)) = geo
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    wt = t(torch, hwio_to_oihw(w), grad=True)
    bt = t(torch, b, grad=True) if b is not None else None
    xpad = F.pad(xt, (pl, pr, pt, pb))  # asymmetric and fit="pad" zeros
    # only the rows and columns some window reads: PyTorch 2.13's float32 weight gradient on two
    # threads came out wrong about one call in three with unread trailing columns (2 images of
    # 5×2×1, a 1×1 kernel at stride (1, 2): 1.87 or 3.31, where the definition gives 3.31)
    stride, dilation = _pair(kwargs.get("stride", 1)), _pair(kwargs.get("dilation", 1))
    ho = (xpad.shape[2] - dilation[0] * (w.shape[0] - 1) - 1) // stride[0] + 1
    wo = (xpad.shape[3] - dilation[1] * (w.shape[1] - 1) - 1) // stride[1] + 1
    xpad = xpad[:, :, : (ho - 1) * stride[0] + dilation[0] * (w.shape[0] - 1) + 1,
                : (wo - 1) * stride[1] + dilation[1] * (w.shape[1] - 1) + 1]
    # PyTorch's native convolution, not oneDNN's: on an Intel Xeon (AVX-512) oneDNN returned zeros
    # or uninitialised values for some outputs of 2 images of 2×1×1, 3×3, stride (1, 2), 'same',
    # float32 (found by test_property_matches_torch; the native path and float64 agree with the
    # definition)
    with _native_convolution(torch):
        yt = F.conv2d(xpad, wt, bt, stride=stride, dilation=dilation, groups=kwargs.get("groups", 1))
        yt.backward(t(torch, nhwc_to_nchw(dy)))
    return (nchw_to_nhwc(n(yt)), nchw_to_nhwc(n(xt.grad)), oihw_to_hwio(n(wt.grad)),
            None if b is None else n(bt.grad))


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case, dtype, rng, torch):
    x, w, b, kwargs = make(case, rng, dtype)
    y, cache = conv2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dy, cache)
    ty, tdx, tdw, tdb = torch_conv(torch, x, w, b, kwargs, dy)
    assert_close(y, ty, dtype=dtype, what="y")
    assert_close(dx, tdx, dtype=dtype, what="dx")
    assert_close(dw, tdw, dtype=dtype, what="dw")
    if b is not None:
        assert_close(db, tdb, dtype=dtype, what="db")
    for a in (y, dx, dw):
        assert a.dtype == dtype


@pytest.mark.oracle
@settings(max_examples=40, deadline=None)
@given(conv_configs(), st.sampled_from([np.float64, np.float32]))
def test_property_matches_torch(config, dtype):
    torch = require_torch()
    shape, k, kernel, kwargs, bias, seed = config
    skip_same_padding_bug(shape, kernel, kwargs)
    geo = explicit_geometry(shape[1:3], kernel, stride=kwargs["stride"], padding=kwargs["padding"],
                            dilation=kwargs["dilation"], fit=kwargs["fit"])
    if geo is None:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((*kernel, shape[3] // kwargs["groups"], k)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    y, cache = conv2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dy, cache)
    ty, tdx, tdw, tdb = torch_conv(torch, x, w, b, kwargs, dy)
    assert_close(y, ty, dtype=dtype, what="y")
    assert_close(dx, tdx, dtype=dtype, what="dx")
    assert_close(dw, tdw, dtype=dtype, what="dw")
    if bias:
        assert_close(db, tdb, dtype=dtype, what="db")


@pytest.mark.parametrize("kernel, kwargs", [((3, 2), dict(stride=(2, 1), fit="crop", groups=3)), ((1, 1), dict())],
                         ids=["im2col", "gemm1x1"])
def test_non_contiguous_inputs(kernel, kwargs, rng, op):
    """Views (an NCHW array transposed to NHWC, reversed and strided slices) give the same answers."""
    x = rng.standard_normal((2, 3, 9, 8)).transpose(0, 2, 3, 1)[:, ::-1, ::2]
    assert not x.flags["C_CONTIGUOUS"]
    w = rng.standard_normal((*kernel, 3 // kwargs.get("groups", 1), 3))
    y, cache = op.conv2d_forward(x, w, None, **kwargs)
    y_c, cache_c = op.conv2d_forward(np.ascontiguousarray(x), w, None, **kwargs)
    assert_close(y, y_c)
    dy = np.asfortranarray(rng.standard_normal(y.shape))
    for a, e in zip(op.conv2d_backward(dy, cache)[:2], op.conv2d_backward(np.ascontiguousarray(dy), cache_c)[:2]):
        assert_close(a, e)


# -- every algorithm against PyTorch and finite differences ------------------------------------------
WINOGRAD_CASES = [
    ((2, 7, 9, 3), 4, 1),  # odd sizes: partial tiles
    ((1, 6, 5, 2), 3, ((2, 0), (1, 2))),  # asymmetric pads
    ((1, 4, 4, 1), 1, 0),  # a single tile
    ((2, 10, 8, 4), 5, 2),  # 'full' padding
]


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("algorithm", ["im2col", "winograd2", "winograd4"])
@pytest.mark.parametrize("shape, k, padding", WINOGRAD_CASES, ids=["odd", "asym", "one_tile", "pad2"])
def test_algorithms_match_torch(shape, k, padding, algorithm, dtype, rng, torch):
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((3, 3, shape[3], k)) / np.sqrt(9 * shape[3])).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    y, cache = conv2d_forward(x, w, b, padding=padding, algorithm=algorithm)
    assert cache.algorithm == algorithm
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dy, cache)
    ty, tdx, tdw, tdb = torch_conv(torch, x, w, b, dict(padding=padding), dy)
    # the guide's tolerance: Winograd F(4,3) in float32 about 1e-4 x max|reference|
    rtol = 1e-4 if (algorithm == "winograd4" and dtype == np.float32) else None
    assert_close(y, ty, dtype=dtype, rtol=rtol, what="y")
    assert_close(dx, tdx, dtype=dtype, rtol=rtol, what="dx")
    assert_close(dw, tdw, dtype=dtype, rtol=rtol, what="dw")
    assert_close(db, tdb, dtype=dtype, rtol=rtol, what="db")


@pytest.mark.parametrize("algorithm", ["winograd2", "winograd4"])
def test_winograd_backward_full_jacobian(algorithm, rng):
    x = rng.standard_normal((1, 5, 6, 2))
    w = rng.standard_normal((3, 3, 2, 2))
    b = rng.standard_normal(2)
    kwargs = dict(padding=((1, 2), (0, 1)), algorithm=algorithm)
    f, vjp = _fns(kwargs, True)
    gradcheck(f, vjp, {"x": x, "w": w, "b": b}, rng=rng, mode="full")


def test_the_readable_op_runs_im2col_only(rng):
    x, w = rng.standard_normal((1, 6, 6, 2)), rng.standard_normal((3, 3, 2, 2))
    assert plain.conv2d_forward(x, w, algorithm="im2col")[1].algorithm == "im2col"
    with pytest.raises(ConfigError, match="convnet.ops.fast"):
        plain.conv2d_forward(x, w, algorithm="winograd4", padding=1)
    with pytest.raises(ConfigError, match="one of"):
        plain.conv2d_forward(x, w, algorithm="fft")
