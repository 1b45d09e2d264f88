"""The small-map algorithm (one GEMM per output pixel and kernel row over the taps inside the image):
against the float64 definition, finite differences, PyTorch and im2col, and its selection rule."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, GeometryError
from convnet.ops import reference as ref
from convnet.ops.fast import choose_algorithm, conv2d_backward, conv2d_forward, smallmap
from convnet.ops.geometry import conv_geometry
from oracle import assert_close, explicit_geometry, gradcheck
from test_ops_conv import torch_conv

# (N, H, W, C, K, (kh, kw), kwargs): small maps, non-square kernels and strides, dilation
# (one tap a run), asymmetric pads, and windows wholly inside the padding (output = bias)
CASES = [
    (3, 2, 2, 4, 5, (3, 3), dict(padding=1)),
    (2, 1, 1, 3, 2, (3, 3), dict(padding=1)),
    (2, 3, 2, 2, 3, (3, 2), dict(stride=(2, 1), padding=(1, 0))),
    (2, 4, 3, 3, 2, (3, 3), dict(padding=((2, 0), (1, 2)), dilation=(1, 2))),
    (1, 2, 3, 2, 2, (2, 3), dict(stride=(1, 2), padding=((3, 1), (0, 2)))),
    (2, 1, 2, 2, 3, (3, 3), dict(padding=3)),
]
IDS = ["2x2", "1x1", "nonsquare_stride", "dilated_asym", "stride_w", "all_padding"]


def _make(case, rng, dtype=np.float64):
    n, h, w, c, k, kernel, kwargs = case
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal((*kernel, c, k)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, wt, b, kwargs


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def _ref(x, w, b, kwargs):
    s, d = _pair(kwargs.get("stride", 1)), _pair(kwargs.get("dilation", 1))
    _, pads = explicit_geometry(x.shape[1:3], w.shape[:2], stride=s, padding=kwargs.get("padding", 0), dilation=d)
    return ref.conv2d(x, w, b, stride=s, pads=pads, dilation=d)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_the_definition_and_backward_matches_im2col(case, rng):
    x, w, b, kwargs = _make(case, rng)
    y, cache = conv2d_forward(x, w, b, algorithm="smallmap", **kwargs)
    assert cache.algorithm == "smallmap"
    want = _ref(x, w, b, kwargs)
    assert_close(y, want, rtol=1e-12, what="y")
    dy = rng.standard_normal(y.shape)
    _, base = conv2d_forward(x, w, b, algorithm="im2col", **kwargs)
    for got, exp, what in zip(conv2d_backward(dy, cache), conv2d_backward(dy, base), ("dx", "dw", "db")):
        assert_close(got, exp, rtol=1e-12, what=what)
    assert conv2d_backward(dy, cache, need_dx=False)[0] is None


@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=["2x2", "dilated_asym"])
def test_backward_against_finite_differences(case, rng):
    x, w, b, kwargs = _make(case, rng)

    def f(x, w, b):
        return conv2d_forward(x, w, b, algorithm="smallmap", **kwargs)[0]

    def vjp(dy, x, w, b):
        _, cache = conv2d_forward(x, w, b, algorithm="smallmap", **kwargs)
        dx, dw, db = conv2d_backward(dy, cache)
        return {"x": dx, "w": dw, "b": db}

    gradcheck(f, vjp, {"x": x, "w": w, "b": b}, rng=rng, mode="full")


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case, dtype, rng, torch):
    x, w, b, kwargs = _make(case, rng, dtype)
    y, cache = conv2d_forward(x, w, b, algorithm="smallmap", **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dy, cache)
    ty, tdx, tdw, tdb = torch_conv(torch, x, w, b, kwargs, dy)
    for got, want, what in ((y, ty, "y"), (dx, tdx, "dx"), (dw, tdw, "dw"), (db, tdb, "db")):
        assert got.dtype == dtype
        assert_close(got, want, dtype=dtype, what=what)


def test_float32_within_1e5_of_the_float64_reference(rng):
    x = rng.standard_normal((16, 2, 2, 64))
    w = rng.standard_normal((3, 3, 64, 48)) / np.sqrt(9 * 64)
    b = rng.standard_normal(48)
    want = _ref(x, w, b, dict(padding=1))
    y, cache = conv2d_forward(*(a.astype(np.float32) for a in (x, w, b)), padding=1)
    assert cache.algorithm == "smallmap" and y.dtype == np.float32
    assert np.abs(y - want).max() <= 1e-5 * np.abs(want).max()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       pads=st.tuples(*[st.integers(0, 3)] * 4), seed=st.integers(0, 2**16))
def test_any_geometry_agrees_with_im2col(n, h, w, kh, kw, sh, sw, dh, dw, pads, seed):
    pt, pb, pl, pr = pads
    try:
        g = conv_geometry((h, w), (kh, kw), stride=(sh, sw), padding=((pt, pb), (pl, pr)), dilation=(dh, dw))
    except GeometryError:
        return  # no valid output for this geometry: conv2d_forward raises for every algorithm
    # the rule's separable counts are the runs' counts
    assert smallmap.inside_taps(g) == sum(nb for *_, nb, _ in smallmap.runs(g))
    assert smallmap.gemms(g) == len(smallmap.runs(g))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, 2))
    wt = rng.standard_normal((kh, kw, 2, 3))
    b = rng.standard_normal(3)
    kwargs = dict(stride=(sh, sw), padding=((pt, pb), (pl, pr)), dilation=(dh, dw))
    y, cache = conv2d_forward(x, wt, b, algorithm="smallmap", **kwargs)
    y0, base = conv2d_forward(x, wt, b, algorithm="im2col", **kwargs)
    assert_close(y, y0, rtol=1e-12, what="y")
    dy = rng.standard_normal(y.shape)
    for got, exp, what in zip(conv2d_backward(dy, cache), conv2d_backward(dy, base), ("dx", "dw", "db")):
        assert_close(got, exp, rtol=1e-12, what=what)


def test_inside_taps_count():
    # 2×2 map, 3×3 pad 1: every output pixel sees the whole image, 4 of 9 taps
    g = conv_geometry((2, 2), (3, 3), padding=1)
    assert smallmap.inside_taps(g) == 16 and abs(smallmap.inside_fraction(g) - 4 / 9) < 1e-12
    assert smallmap.multiplies(8, g, 512, 256) == 8 * 16 * 512 * 256
    # dilated columns: one tap a run
    g = conv_geometry((1, 5), (1, 3), dilation=(1, 2), padding=((0, 0), (2, 2)))
    assert all(nb == 1 for *_, nb, _ in smallmap.runs(g))


def test_rule():
    two = conv_geometry((2, 2), (3, 3), padding=1)
    three = conv_geometry((3, 3), (3, 3), padding=1)
    four = conv_geometry((4, 4), (3, 3), padding=1)
    assert choose_algorithm(two, 512, 512, 1, n=64) == "smallmap"
    assert choose_algorithm(conv_geometry((1, 1), (3, 3), padding=1), 256, 256, 1, n=8) == "smallmap"
    assert choose_algorithm(three, 512, 512, 1, n=64) == "smallmap"
    assert choose_algorithm(four, 512, 512, 1, n=64) != "smallmap"  # 69 % of the taps inside
    assert choose_algorithm(two, 512, 512, 1, n=1) != "smallmap"  # no rows for the GEMMs
    assert choose_algorithm(two, 512, 512, 2, n=64) != "smallmap"
    # few taps inside, but too many GEMMs for one image (none of them measured)
    for kernel, hw, kw in (((5, 5), (4, 4), dict(padding=2)), ((3, 3), (8, 8), dict(padding=6, dilation=6)),
                           ((7, 7), (7, 7), dict(padding=3))):
        g = conv_geometry(hw, kernel, **kw)
        assert smallmap.gemms(g) > smallmap.MAX_GEMMS
        assert choose_algorithm(g, 256, 256, 1, n=32) != "smallmap"
    assert choose_algorithm(conv_geometry((2, 2), (5, 5), padding=2), 256, 256, 1, n=32) == "smallmap"
    with pytest.raises(ConfigError, match="ungrouped"):
        choose_algorithm(two, 64, 64, 2, "smallmap", n=64)
