"""Output-size arithmetic (convnet.ops.geometry) against the direct formula, and the fit policy."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, GeometryError
from convnet.ops.geometry import as_pair, axis_geometry, conv_geometry, parse_padding, pool_geometry

FAST = settings(max_examples=60, deadline=None)


def expected_axis(size, kernel, stride, dilation, pb, pa, fit):
    """The notes' (W - F + 2P)/S + 1 per axis, written independently of the module.

    Returns (out, pad_after_including_fit_extra) or the string "error".
    """
    eff = dilation * (kernel - 1) + 1
    span = size + pb + pa - eff
    if span < 0:
        return "error"
    if span % stride == 0:
        return span // stride + 1, pa
    if fit == "error":
        return "error"
    floor_out = span // stride + 1
    if fit == "crop":
        return floor_out, pa
    ceil_out = -(-span // stride) + 1
    # PyTorch's ceil_mode rule: the last window must start inside the input or the top padding
    if (ceil_out - 1) * stride >= size + pb:
        return floor_out, pa
    extra = (ceil_out - 1) * stride + eff - (size + pb + pa)
    return ceil_out, pa + extra


# -- the notes' numbers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, f, s, p, out",
    [(7, 3, 1, 0, 5), (7, 3, 2, 0, 3), (5, 3, 2, 1, 3), (32, 5, 1, 2, 32), (227, 11, 4, 0, 55), (224, 2, 2, 0, 112),
     (55, 3, 2, 0, 27), (13, 3, 2, 0, 6), (224, 3, 1, 1, 224)],
)
def test_notes_sizes(size, f, s, p, out):
    g = conv_geometry((size, size), (f, f), stride=s, padding=p)
    assert g.out_hw == (out, out)
    assert g.pads == ((p, p), (p, p))


def test_stride_3_on_7x7_does_not_fit():
    with pytest.raises(GeometryError) as info:
        conv_geometry((7, 7), (3, 3), stride=3, padding=0)
    msg = str(info.value)
    for part in ("7", "F=3", "S=3", "P=0", "2.33"):
        assert part in msg
    assert isinstance(info.value, ValueError)


# -- direct formula, every fit ---------------------------------------------------------------------
@FAST
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 5),
    dilation=st.integers(1, 3),
    pb=st.integers(0, 4),
    pa=st.integers(0, 4),
    fit=st.sampled_from(["error", "crop", "pad"]),
)
def test_axis_geometry_matches_formula(size, kernel, stride, dilation, pb, pa, fit):
    want = expected_axis(size, kernel, stride, dilation, pb, pa, fit)
    if want == "error":
        with pytest.raises(GeometryError) as info:
            axis_geometry(size, kernel, stride=stride, dilation=dilation, pad_before=pb, pad_after=pa, fit=fit)
        assert str(size) in str(info.value) and f"F={kernel}" in str(info.value)
        return
    g = axis_geometry(size, kernel, stride=stride, dilation=dilation, pad_before=pb, pad_after=pa, fit=fit)
    out, pad_after = want
    assert g.out == out
    assert g.pad_after == pad_after and g.pad_before == pb
    assert g.fit_extra == pad_after - pa
    assert g.effective_kernel == dilation * (kernel - 1) + 1
    assert g.padded_size == size + pb + pad_after
    assert g.used_size == (out - 1) * stride + g.effective_kernel
    assert g.used_size <= g.padded_size
    if fit == "crop":
        # floor: the unused rows are fewer than one stride
        assert g.padded_size - g.used_size < stride


@FAST
@given(
    h=st.integers(1, 30), w=st.integers(1, 30), kh=st.integers(1, 5), kw=st.integers(1, 5),
    sh=st.integers(1, 4), sw=st.integers(1, 4), dh=st.integers(1, 2), dw=st.integers(1, 2),
    pt=st.integers(0, 3), pb=st.integers(0, 3), pl=st.integers(0, 3), pr=st.integers(0, 3),
    fit=st.sampled_from(["error", "crop", "pad"]),
)
def test_conv_geometry_height_and_width_are_independent(h, w, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, fit):
    wh = expected_axis(h, kh, sh, dh, pt, pb, fit)
    ww = expected_axis(w, kw, sw, dw, pl, pr, fit)
    args = dict(stride=(sh, sw), padding=((pt, pb), (pl, pr)), dilation=(dh, dw), fit=fit)
    if "error" in (wh, ww):
        with pytest.raises(GeometryError) as info:
            conv_geometry((h, w), (kh, kw), **args)
        axis = "height" if wh == "error" else "width"
        assert axis in str(info.value)
        return
    g = conv_geometry((h, w), (kh, kw), **args)
    assert g.out_hw == (wh[0], ww[0])
    assert g.pads == ((pt, wh[1]), (pl, ww[1]))
    assert g.kernel == (kh, kw) and g.stride == (sh, sw) and g.dilation == (dh, dw)


@FAST
@given(size=st.integers(1, 64), kernel=st.integers(1, 7), stride=st.integers(1, 4), dilation=st.integers(1, 2))
def test_same_padding_gives_ceil_size_over_stride(size, kernel, stride, dilation):
    """'same' means out = ceil(size / stride) for every kernel and stride (TensorFlow's rule).

    BUG (ops/geometry.py): when the kernel's extent is smaller than the stride (1×1 stride-2
    convolutions: ResNet's projection shortcuts) the clamped total padding is 0, the span is
    not divisible by the stride, and fit='error' raises GeometryError instead of giving ceil.
    """
    g = conv_geometry((size, size), kernel, stride=stride, dilation=dilation, padding="same")
    assert g.out_hw == (math.ceil(size / stride),) * 2
    (pt, pb), _ = g.pads
    assert pt <= pb <= pt + 1


def test_same_padding_1x1_stride_2_resnet_shortcut():
    """ResNet's 1×1/2 projection shortcut on a 56×56 map gives 28×28 (see the BUG note above)."""
    g = conv_geometry((56, 56), (1, 1), stride=2, padding="same")
    assert g.out_hw == (28, 28)


def test_same_padding_examples():
    assert conv_geometry((224, 224), (3, 3), stride=1, padding="same").pads == ((1, 1), (1, 1))
    g = conv_geometry((224, 224), (7, 7), stride=2, padding="same")
    assert g.out_hw == (112, 112) and g.pads == ((2, 3), (2, 3))
    g = conv_geometry((5, 6), (2, 2), stride=1, padding="SAME")
    assert g.out_hw == (5, 6) and g.pads == ((0, 1), (0, 1))


def test_fit_pad_falls_back_to_floor_like_pytorch_ceil_mode():
    # size 5, F=2, S=2, P=1: floor 3, ceil 4 would start at 6 >= 5 + 1 -> stays 3 (PyTorch too)
    g = axis_geometry(5, 2, stride=2, pad_before=1, pad_after=1, fit="pad")
    assert g.out == 3 and g.fit_extra == 0
    # size 6, F=3, S=2, P=0: floor 2, ceil 3 starts at 4 < 6 -> 3 with one extra zero row
    g = axis_geometry(6, 3, stride=2, fit="pad")
    assert g.out == 3 and g.fit_extra == 1 and g.pad_after == 1


def test_pool_geometry_stride_defaults_to_pool_size():
    g = pool_geometry((224, 224), 2)
    assert g.out_hw == (112, 112) and g.stride == (2, 2)
    g = pool_geometry((13, 13), 3, stride=2)
    assert g.out_hw == (6, 6)
    g = pool_geometry((9, 8), (3, 2))
    assert g.out_hw == (3, 4) and g.stride == (3, 2)


# -- argument normalisation and refusal -----------------------------------------------------------
def test_parse_padding_forms():
    assert parse_padding(2) == ((2, 2), (2, 2))
    assert parse_padding((1, 2)) == ((1, 1), (2, 2))
    assert parse_padding([1, 2]) == ((1, 1), (2, 2))
    assert parse_padding(((0, 1), (2, 3))) == ((0, 1), (2, 3))
    assert parse_padding("valid") == ((0, 0), (0, 0))
    assert parse_padding("Same") == "same"
    assert as_pair(3, "x") == (3, 3) and as_pair((3, 5), "x") == (3, 5)


@pytest.mark.parametrize(
    "kwargs, arg, received",
    [
        (dict(kernel=0), "kernel_size", "0"),
        (dict(kernel=(3, -1)), "kernel_size", "-1"),
        (dict(stride=0), "stride", "0"),
        (dict(stride=(1, 2, 3)), "stride", "(1, 2, 3)"),
        (dict(stride=1.5), "stride", "1.5"),
        (dict(stride=True), "stride", "True"),
        (dict(dilation=0), "dilation", "0"),
        (dict(padding=-1), "padding", "-1"),
        (dict(padding="full"), "padding", "'full'"),
        (dict(padding=((0, -1), (0, 0))), "padding", "-1"),
        (dict(padding=None), "padding", "None"),
        (dict(fit="floor"), "fit", "'floor'"),
    ],
)
def test_invalid_arguments_raise_config_error(kwargs, arg, received):
    call = dict(kernel=3, stride=1, padding=0, dilation=1, fit="error")
    call.update(kwargs)
    kernel = call.pop("kernel")
    with pytest.raises(ConfigError) as info:
        conv_geometry((8, 8), kernel, **call)
    msg = str(info.value)
    assert f"`{arg}`" in msg
    assert f"received {received}" in msg
    assert isinstance(info.value, ValueError)


def test_kernel_larger_than_input_raises_with_every_fit():
    for fit in ("error", "crop", "pad"):
        with pytest.raises(GeometryError, match="smaller than the filter F=5"):
            conv_geometry((4, 9), 5, fit=fit)


def test_error_message_suggests_crop_and_pad():
    with pytest.raises(GeometryError) as info:
        conv_geometry((10, 8), (3, 3), stride=(2, 2), layer="conv1")
    msg = str(info.value)
    assert msg.startswith("conv1:") and "height 10" in msg and "fit='crop'" in msg and "fit='pad'" in msg
    assert "4.5" in msg
