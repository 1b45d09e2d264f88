"""The pattern language: parsing, defaults, errors that point at the column, round trips."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convnet.analysis import summarize
from convnet.errors import GeometryError, PatternSyntaxError
from convnet.layers import (
    LRN,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool,
    L2Pool2D,
    MaxPool2D,
    ReLU,
)
from convnet.net import Net
from convnet.pattern import parse, parse_spec, to_pattern

ISSUE_EXAMPLE = "INPUT[32x32x3] -> [[CONV3-64 -> RELU]*2 -> POOL2]*3 -> [FC-512 -> RELU]*2 -> FC-10"


def kinds(net):
    return [type(layer).__name__ for layer in net.layers]


def test_issue_example():
    net = parse(ISSUE_EXAMPLE)
    assert net.input_shape == (32, 32, 3)
    assert kinds(net) == (["Conv2D", "ReLU"] * 2 + ["MaxPool2D"]) * 3 + ["Dense", "ReLU"] * 2 + ["Dense"]
    assert net.output_shape() == (10,)
    shapes = net.shapes()
    assert shapes["pool1"] == (16, 16, 64) and shapes["pool3"] == (4, 4, 64)
    assert [n.name for n in net.nodes][:5] == ["conv1", "relu1", "conv2", "relu2", "pool1"]
    assert net.head is None


def test_conv_defaults_follow_the_notes():
    c = parse("CONV3-64")["conv1"]
    assert (c.filters, c.kernel_size, c.stride, c.padding) == (64, (3, 3), (1, 1), ((1, 1), (1, 1)))
    c5 = parse("CONV5-32")["conv1"]
    assert c5.padding == ((2, 2), (2, 2))
    c1 = parse("conv1-256")["conv1"]
    assert c1.kernel_size == (1, 1) and c1.padding == ((0, 0), (0, 0))
    assert parse("CONV-16")["conv1"].kernel_size == (3, 3)


def test_explicit_stride_pad_groups_dilation_and_fit():
    c = parse("CONV5-32/S1/P2")["conv1"]
    assert (c.kernel_size, c.stride, c.padding) == ((5, 5), (1, 1), ((2, 2), (2, 2)))
    c = parse("CONV11-96/S4/P0")["conv1"]
    assert c.stride == (4, 4) and c.padding == ((0, 0), (0, 0))
    c = parse("conv5-256/g2/d2/nobias/floor")["conv1"]
    assert (c.groups, c.dilation, c.use_bias, c.fit) == (2, (2, 2), False, "crop")
    c = parse("CONV3x5-8/S2x1/P1x2/CEIL")["conv1"]
    assert c.kernel_size == (3, 5) and c.stride == (2, 1) and c.padding == ((1, 1), (2, 2)) and c.fit == "pad"
    c = parse("CONV3x5-8/S2x1/SAME")["conv1"]  # /SAME with /P or a rounding is refused: see below
    assert c.padding == "same"


def test_pool_spellings():
    net = parse("POOL2 -> POOL3/S2 -> MAXPOOL -> AVGPOOL -> L2POOL3/S1/P1 -> POOL")
    p = net.layers
    assert [type(x) for x in p] == [MaxPool2D, MaxPool2D, MaxPool2D, AvgPool2D, L2Pool2D, MaxPool2D]
    assert (p[0].pool_size, p[0].stride) == ((2, 2), (2, 2))
    assert (p[1].pool_size, p[1].stride) == ((3, 3), (2, 2))
    assert (p[2].pool_size, p[2].stride) == ((2, 2), (2, 2))  # VGG's "maxpool" is 2x2/2
    assert p[4].padding == ((1, 1), (1, 1)) and p[4].stride == (1, 1)


def test_vgg_table_spellings_one_per_line():
    text = """
        conv3-64
        LRN
        maxpool
        conv1-256
        FC-4096
        FC-1000
        soft-max
    """
    net = parse(text)
    assert kinds(net) == ["Conv2D", "LRN", "MaxPool2D", "Conv2D", "Dense", "Dense"]
    assert net.head == "softmax" and net.input_shape is None


def test_other_layers_and_separators():
    net = parse("INPUT[784] , FC-100 -> BN -> RELU → DROPOUT-0.25 -> DROPOUT -> FC-10 -> SOFTMAX")
    assert kinds(net) == ["Dense", "BatchNorm", "ReLU", "Dropout", "Dropout", "Dense"]
    assert net["drop1"].rate == 0.25 and net["drop2"].rate == 0.5
    assert net.output_shape() == (10,) and net.head == "softmax"
    assert kinds(parse("INPUT[8x8x3] -> CONV3-4 -> GAP -> FC-2")) == ["Conv2D", "GlobalAvgPool", "Dense"]
    assert kinds(parse("INPUT[8x8x3] -> FLATTEN -> FC-2")) == ["Flatten", "Dense"]


def test_fc_flattens_by_itself():
    net = parse("INPUT[8x8x3] -> CONV3-4 -> POOL2 -> FC-10")
    assert net.output_shape() == (10,)
    net.build(rng=np.random.default_rng(0))
    assert net["fc1"].params["w"].shape == (4 * 4 * 4, 10)


def test_repetition_zero_and_nesting():
    assert kinds(parse("INPUT[8x8x3] -> [CONV3-4 -> RELU]*0 -> FC-2")) == ["Dense"]
    assert len(parse("[[RELU]*2 -> [RELU]*3]*2").layers) == 10


def _err(text):
    with pytest.raises(PatternSyntaxError) as info:
        parse(text)
    return info.value


@pytest.mark.parametrize(
    "text, column, expected",
    [
        ("INPUT[32x32x3] -> -> FC-10", 19, "a layer"),
        ("CONVV3-64", 1, "a layer"),
        ("CONV3 -> RELU", 6, "CONV<F>-<K>"),
        ("POOL2/X3", 7, "/S<stride>"),
        ("[CONV3-64 -> RELU*2", 20, "']'"),
        ("FC-10 -> SOFTMAX -> RELU", 10, "SOFTMAX only at the end"),
        ("CONV3-64 -> POOL?", 17, "a concrete net"),
        ("INPUT[32x32] -> FC-1", 7, "HxWxC"),
        ("RELU -> INPUT[3]", 9, "a layer"),
        ("FC-", 1, "FC-<N>"),
        ("RELU ->", 8, "a layer"),
        ("RELU -> ]", 9, "a layer"),
        ("RELU % FC-1", 6, "a layer"),
        ("[RELU]*x", 8, "a repeat count"),
        ("", 1, "a layer"),
        ("DROPOUT-1.5", 1, "DROPOUT-r"),
        ("RELU/S2", 5, "RELU alone"),
        ("CONV3-64/S0", 10, "/S<stride>"),
    ],
)
def test_syntax_errors_point_at_the_column(text, column, expected):
    e = _err(text)
    assert e.column == column, str(e)
    assert expected in e.expected
    lines = str(e).splitlines()
    assert lines[-2].strip() == text.strip()
    assert lines[-1] == "    " + " " * (column - 1) + "^"
    assert f"column {column}" in lines[0]


def test_error_message_shows_text_and_caret():
    e = _err("INPUT[32x32x3] -> CONVV3-64 -> FC-10")
    msg = str(e)
    assert "did you mean CONV3-64?" in msg
    assert msg.splitlines()[-2] == "    INPUT[32x32x3] -> CONVV3-64 -> FC-10"
    assert msg.splitlines()[-1] == "    " + " " * 18 + "^"
    assert isinstance(e, ValueError)


def test_multiline_errors_name_the_line():
    e = _err("conv3-64\nmaxpool\nfc-x")
    assert e.line == 3 and e.column == 1
    assert "line 3, column 1" in str(e)


def test_geometry_error_surfaces_at_parse_with_input():
    with pytest.raises(ValueError, match="conv1"):
        parse("INPUT[4x4x3] -> CONV5-8/P0")


# -- limits: a pattern is text a user may paste; its size is checked before anything is built ----
@pytest.mark.parametrize(
    "text, column, total",
    [
        ("[CONV3-8]*99999999", 11, "99,999,999"),
        ("INPUT[8x8x3] -> [CONV3-8 -> RELU]*5001", 35, "10,002"),
        ("[[CONV3-8]*1000]*1000", 18, "1,000,000"),  # nested: the outer count is the one refused
        ("RELU*10001", 6, "10,001"),
    ],
)
def test_repetition_beyond_the_limit_is_refused_before_expanding(text, column, total):
    from convnet.pattern import MAX_LAYERS

    e = _err(text)
    assert e.column == column, str(e)
    assert f"to {total}, more than the limit of {MAX_LAYERS:,} layers" in str(e)
    assert str(e).splitlines()[-1] == "    " + " " * (column - 1) + "^"


def test_repetition_limits_sum_over_the_sequence_and_allow_the_limit_itself():
    from convnet.pattern import MAX_LAYERS

    assert len(parse_spec(f"[RELU]*{MAX_LAYERS}").layers) == MAX_LAYERS
    assert _err("[[RELU]*99999999999]*0").column == 9  # the inner group is refused before *0 could drop it
    e = _err(f"[RELU]*{MAX_LAYERS // 2} -> BN -> [RELU]*{MAX_LAYERS // 2}")
    assert e.column == 22 and f"expand to {MAX_LAYERS + 1:,} layers" in str(e)


def test_a_count_of_thousands_of_digits_and_deep_nesting_are_syntax_errors():
    from convnet.pattern import MAX_DEPTH

    e = _err("[RELU]*" + "9" * 5000)  # Python refuses to convert such a string to int
    assert e.column == 8 and "5000 digits" in str(e)
    e = _err("[" * (MAX_DEPTH + 1) + "RELU" + "]" * (MAX_DEPTH + 1))
    assert e.column == MAX_DEPTH + 1 and f"more than {MAX_DEPTH} deep" in str(e)
    assert len(parse("[" * MAX_DEPTH + "RELU" + "]" * MAX_DEPTH).layers) == 1


# -- options that repeat or contradict each other ------------------------------------------------
@pytest.mark.parametrize(
    "text, column, says",
    [
        ("CONV3-8/FLOOR/CEIL", 15, "'/CEIL' contradicts '/FLOOR'"),
        ("POOL3/S2/ceil/floor", 15, "'/floor' contradicts '/ceil'"),
        ("CONV3-8/P1/SAME", 12, "'/SAME' contradicts '/P1'"),
        ("CONV3-8/SAME/P0", 14, "'/P0' contradicts '/SAME'"),
        ("CONV3-8/S2/S1", 12, "'/S1' gives the stride a second time (after '/S2')"),
        ("CONV3-8/P1x2/P1", 14, "gives the padding a second time"),
        ("CONV3-8/G2/G4", 12, "gives the groups a second time"),
        ("CONV3-8/D2/D1", 12, "gives the dilation a second time"),
        ("POOL2/S2/S2", 10, "'/S2' is given twice"),
        ("CONV3-8/NOBIAS/NOBIAS", 16, "'/NOBIAS' is given twice"),
        ("FC-3/NOBIAS/NOBIAS", 13, "'/NOBIAS' is given twice"),
        ("CONV3-8/FLOOR/FLOOR", 15, "'/FLOOR' is given twice"),
        ("CONV3-8/SAME/CEIL", 14, "'/CEIL' has no effect with '/SAME'"),
        ("CONV3-8/FLOOR/SAME", 15, "'/FLOOR' has no effect with '/SAME'"),
    ],
)
def test_repeated_or_contradictory_options_are_refused(text, column, says):
    e = _err(text)
    assert e.column == column, str(e)
    assert says in str(e)
    assert str(e).splitlines()[-1] == "    " + " " * (column - 1) + "^"


def test_same_padding_is_written_back_without_a_rounding():
    # /SAME always fits, so a Python layer's fit is not written (the text would be refused)
    net = Net.sequential([Conv2D(4, 3, stride=2, padding="same", fit="pad")], input_shape=(9, 9, 1))
    assert to_pattern(net) == "INPUT[9x9x1] -> CONV3-4/S2/SAME"
    assert parse(to_pattern(net)).shapes() == net.shapes()


# -- geometry errors speak the language the net was written in --------------------------------------
def test_uneven_geometry_of_a_pattern_says_floor_and_ceil():
    with pytest.raises(GeometryError) as info:
        parse("INPUT[10x10x1] -> CONV3-4/S2")
    msg = str(info.value)
    assert "conv1" in msg and "CONV3-4/S2/FLOOR" in msg and "CONV3-4/S2/CEIL" in msg and "fit=" not in msg
    net = parse("CONV3-4/S2 -> RELU")  # no INPUT: the error comes at shape inference, worded the same
    for compute in (net.shapes, net.output_shape, lambda shape: summarize(net, shape)):
        with pytest.raises(GeometryError) as info:
            compute((10, 10, 1))
        assert "/FLOOR" in str(info.value) and "/CEIL" in str(info.value) and "fit=" not in str(info.value)
    # the same layer built in Python keeps Python's words
    py = Net.sequential([Conv2D(4, 3, stride=2, padding=1)])
    with pytest.raises(GeometryError) as info:
        py.shapes((10, 10, 1))
    assert "fit='crop'" in str(info.value) and "fit='pad'" in str(info.value) and "/FLOOR" not in str(info.value)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(3, 40), f=st.integers(1, 5), s=st.integers(2, 4), p=st.integers(0, 2),
       pool=st.booleans())
def test_the_advice_of_a_pattern_geometry_error_works(size, f, s, p, pool):
    """Whatever the uneven CONV/POOL, the error names /FLOOR and /CEIL, and the layer text it
    suggests parses to the floor and ceil sizes."""
    assume(size + 2 * p >= f and (size + 2 * p - f) % s and p < f)
    layer = f"POOL{f}/S{s}/P{p}" if pool else f"CONV{f}-2/S{s}/P{p}"
    with pytest.raises(GeometryError) as info:
        parse(f"INPUT[{size}x{size}x1] -> {layer}")
    msg = str(info.value)
    assert f"write {layer}/FLOOR" in msg and f"{layer}/CEIL" in msg and "fit=" not in msg
    floor = parse(f"INPUT[{size}x{size}x1] -> {layer}/FLOOR").output_shape()
    ceil = parse(f"INPUT[{size}x{size}x1] -> {layer}/CEIL").output_shape()
    assert floor[0] == (size + 2 * p - f) // s + 1
    assert ceil[0] in (floor[0], floor[0] + 1)  # ceil never adds a window that starts in padding only


def test_parse_spec_has_no_layers_built():
    spec = parse_spec(ISSUE_EXAMPLE)
    assert spec.input_shape == (32, 32, 3) and len(spec.layers) == 20
    assert spec.layers[0].kind == "CONV" and spec.layers[0].args["filters"] == 64


def test_to_pattern_round_trip_and_compression():
    net = parse(ISSUE_EXAMPLE + " -> SOFTMAX")
    text = to_pattern(net)
    assert text.startswith("INPUT[32x32x3] -> ") and text.endswith("-> SOFTMAX")
    assert "[CONV3-64 -> RELU]*2" in text or "[CONV3-64 -> RELU -> CONV3-64 -> RELU -> POOL2]*3" in text
    again = parse(text)
    assert to_pattern(again) == text
    assert again.shapes() == net.shapes()


def test_to_pattern_of_a_zoo_chain():
    from convnet import zoo

    for name in ("alexnet", "zfnet", "vgg16_c", "vgg11_lrn", "lenet5", "allconvnet"):
        net = zoo.get(name)
        if name == "lenet5":  # average-pool subsampling
            assert "AVGPOOL2" in to_pattern(net)
        back = parse(to_pattern(net))
        assert list(back.shapes().values()) == list(net.shapes().values())
        assert back.num_params() == net.num_params()
    assert "CONV5-256/G2" in to_pattern(zoo.get("alexnet"))


def test_to_pattern_refuses_branches():
    from convnet import zoo
    from convnet.errors import ConfigError

    with pytest.raises(ConfigError, match="branches"):
        to_pattern(zoo.get("resnet18"))


_atoms = st.one_of(
    st.builds(lambda f, k, s, extra: f"CONV{f}-{k}" + (f"/S{s}" if s > 1 else "") + extra,
              st.sampled_from([1, 3, 5]), st.integers(1, 8), st.integers(1, 2),
              st.sampled_from(["", "/NOBIAS", "/P0", "/G1", "/D2"])),
    st.sampled_from(["RELU", "BN", "LRN", "DROPOUT", "DROPOUT-0.1", "POOL2", "AVGPOOL2", "POOL3/S2/P1/CEIL",
                     "L2POOL2", "FC-7", "FC-3/NOBIAS"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_atoms, min_size=1, max_size=8), st.booleans())
def test_round_trip_property(atoms, softmax):
    text = " -> ".join(atoms) + (" -> SOFTMAX" if softmax else "")
    net = parse(text)
    written = to_pattern(net)
    again = parse(written)
    assert [layer_to_tuple(a) for a in net.layers] == [layer_to_tuple(b) for b in again.layers]
    assert again.head == net.head
    assert to_pattern(again) == written


def layer_to_tuple(layer):
    keys = ("filters", "kernel_size", "stride", "padding", "dilation", "groups", "use_bias", "fit", "pool_size",
            "units", "rate")
    return (type(layer).__name__, tuple(getattr(layer, k, None) for k in keys))


def test_pattern_layers_are_the_real_layer_classes():
    net = parse("INPUT[8x8x3] -> CONV3-4 -> BN -> RELU -> LRN -> POOL2 -> DROPOUT -> GAP -> FC-2")
    assert [type(x) for x in net.layers] == [Conv2D, BatchNorm, ReLU, LRN, MaxPool2D, Dropout, GlobalAvgPool, Dense]
