"""Sizing lint: the notes' rules of thumb, each with a net that breaks it, and no false warning on the zoo."""
import re
import warnings

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convnet import zoo
from convnet.analysis.lint import SizingWarningCategory, _unread, lint
from convnet.ops.geometry import axis_geometry
from convnet.pattern import parse


def rules(net):
    return [(w.rule, w.layer) for w in lint(net)]


def test_clean_net_has_no_warnings():
    assert lint(zoo.get("vgg16")) == []
    assert lint(parse("INPUT[32x32x3] -> [CONV3-16 -> RELU -> POOL2]*3 -> FC-10")) == []


#: the findings that are TRUE of zoo nets, with why; every other zoo net must lint clean
ZOO_FINDINGS = {
    # LeNet-5's C1 and C3 are unpadded 5×5 convolutions: 32 → 28 and 14 → 10.  The notes' rule
    # (pad P = (F-1)/2 to keep the size) is exactly what LeNet does not do, so the finding holds.
    # C5 (5×5 on a 5×5 map, output 1×1) is an FC layer written as a CONV: not reported.
    "lenet5": [("conv-padding", "c1"), ("conv-padding", "c3")],
    # All-CNN-C's conv7 is the paper's unpadded 3×3 on 8×8 → 6×6: it does shrink the map.
    "allconvnet": [("conv-padding", "conv7")],
    # Silent on purpose (each was warned before, falsely):
    # * alexnet: 227 is odd, but 11×11/4 unpadded tiles only at 4n + 3, so no size divisible by
    #   32 runs; the input is what the net needs (224 fails: `summary alexnet --input 224x224x3`).
    # * resnet*: the downsampling is 32 along the main path (the shortcut's 1×1/2 runs beside it,
    #   it does not halve again: "halves it 8 times, 256" was wrong); the floored 7×7/2 P3 stem,
    #   3×3/2 P1 layers and max pool drop only a row of zero padding, and the 1×1/2 projection's
    #   unread last row is one of the rows it skips every stride anyway.
    # * googlenet, zfnet: ceil-mode pooling reads every input row (one more window); their
    #   floored stride-2 convs drop only padding.
    # * resnet*_cifar, allconvnet: the stride-2 3×3 P1 convs floor away a padding row only.
}


@pytest.mark.parametrize("name", zoo.names())
def test_no_false_warning_on_any_zoo_net(name):
    assert rules(zoo.get(name)) == ZOO_FINDINGS.get(name, [])


# -- input-divisibility -------------------------------------------------------------------------
def test_input_not_divisible_by_two_often_enough():
    assert rules(parse("INPUT[36x36x3] -> [CONV3-4 -> POOL2]*2 -> POOL3/S3 -> FC-2")) == []  # 36 = 2·2·9
    net = parse("INPUT[28x28x3] -> [CONV3-4 -> POOL2]*2 -> CONV3-4 -> POOL2/FLOOR -> FC-2")
    found = lint(net)
    assert found[0].rule == "input-divisibility" and "28×28" in found[0].message
    assert "halves it 3 time(s) (total downsampling 8)" in found[0].message
    assert "32×32 or 24×24 divide evenly, and the net runs at both" in found[0].message
    assert ("uneven-geometry", "pool3") in rules(net)


def test_downsampling_is_counted_along_the_main_path():
    # ResNet-50: five halvings (jump 32 at layer4), however many strided shortcuts run beside them
    assert [w for w in lint(zoo.get("resnet50")) if w.rule == "input-divisibility"] == []
    found = lint(zoo.get("resnet18", input_shape=(200, 200, 3)))
    assert [w.rule for w in found] == ["input-divisibility"]
    assert "halves it 5 time(s) (total downsampling 32)" in found[0].message
    assert "192×192 or 224×224" in found[0].message


def test_recommended_sizes_are_sizes_the_net_runs_at():
    # the recommendation is checked: AlexNet at 227 gets none, since nothing divisible by 32 tiles
    assert rules(zoo.get("alexnet")) == []
    with pytest.raises(ValueError, match="conv1"):
        zoo.get("alexnet", input_shape=(224, 224, 3)).shapes()
    # a pattern that only tiles at 4n + 3: odd is what it needs, so nothing is said
    assert rules(parse("INPUT[35x35x3] -> CONV11-8/S4/P0 -> POOL2/S2/CEIL -> FC-2")) == []


_chain = st.lists(
    st.sampled_from(["CONV3-4", "CONV3-4/S2", "CONV3-4/S2/FLOOR", "CONV5-4/S2/P0", "POOL2", "POOL2/CEIL",
                     "POOL3/S2", "POOL3/S2/CEIL", "CONV1-4/S2/FLOOR", "CONV7-4/S2/P3/FLOOR"]),
    min_size=1, max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(layers=_chain, size=st.integers(9, 80))
def test_property_every_recommended_size_runs_and_divides(layers, size):
    text = f"INPUT[{size}x{size}x3] -> " + " -> ".join(layers)
    try:
        net = parse(text)
    except ValueError:
        assume(False)
    for w in lint(net):
        if w.rule != "input-divisibility":
            continue
        halvings = int(re.search(r"halves it (\d+) time", w.message).group(1))
        sizes = re.findall(r"(\d+)×(\d+)(?: or|\)| divide)", w.message.split(";")[1])
        assert sizes, w.message
        for h, ww in sizes:
            assert int(h) % 2**halvings == 0 and int(ww) % 2**halvings == 0
            net.shapes((int(h), int(ww), 3))  # runs: raises otherwise
            assert "input-divisibility" not in [r for r, _ in rules(parse(text.replace(f"{size}x{size}", f"{h}x{ww}")))]


# -- conv-padding, pool-size ----------------------------------------------------------------------
def test_stride_one_conv_padding():
    found = lint(parse("INPUT[32x32x3] -> CONV5-8/P1 -> CONV3-8 -> CONV4-8"))
    assert [(w.rule, w.layer) for w in found] == [("conv-padding", "conv1"), ("conv-padding", "conv3")]
    assert "P = (F - 1) / 2 = 2" in found[0].message
    assert "even F" in found[1].message
    # a window over the whole unpadded input is an FC layer written as a CONV (FC -> CONV)
    assert rules(parse("INPUT[7x7x512] -> CONV7-16/P0")) == []


def test_large_pooling_window():
    assert ("pool-size", "pool1") in rules(parse("INPUT[32x32x3] -> POOL4"))
    assert all(rule != "pool-size" for rule, _ in rules(parse("INPUT[33x33x3] -> POOL3/S2")))


# -- uneven-geometry ------------------------------------------------------------------------------
def test_uneven_geometry_warns_when_input_rows_go_unread():
    found = lint(parse("INPUT[32x32x3] -> CONV3-4/S2/P0/FLOOR -> RELU -> POOL3/S2"))
    assert [(w.rule, w.layer) for w in found] == [("uneven-geometry", "conv1")]
    assert "the last 1 row(s) of its 32×32 input are never read" in found[0].message
    assert found[0].message.endswith("round up with /CEIL.")  # a pattern's layer is told in pattern words
    from convnet.layers import Conv2D
    from convnet.net import Net

    py = Net.sequential([Conv2D(4, 3, stride=2, fit="crop")], input_shape=(32, 32, 3))
    assert lint(py)[0].message.endswith("round up with fit='pad'.")
    # width only: the message names columns
    uneven = [w for w in lint(parse("INPUT[33x32x3] -> CONV3-4/S2/P0/FLOOR")) if w.rule == "uneven-geometry"]
    assert "the last 1 column(s) of its 33×32 input" in uneven[0].message


def test_uneven_geometry_is_silent_where_nothing_is_lost():
    # floors away a row of padding only (ResNet's stem and strided 3×3 P1), or a row that a 1×1/2
    # skips every stride anyway; ceil-mode (Caffe's pooling) reads every row
    for text in ("INPUT[224x224x3] -> CONV7-8/S2/P3/FLOOR", "INPUT[32x32x3] -> CONV3-4/S2/P1/FLOOR",
                 "INPUT[56x56x4] -> CONV1-8/S2/P0/FLOOR", "INPUT[112x112x4] -> POOL3/S2/CEIL",
                 "INPUT[32x32x3] -> CONV3-4/S2/P0/CEIL"):
        assert rules(parse(text)) == [], text


def _covered(g, size):
    """Real input rows (0 .. size-1) inside some window's span."""
    rows = set()
    for o in range(g.out):
        start = o * g.stride - g.pad_before
        rows.update(r for r in range(start, start + g.effective_kernel) if 0 <= r < size)
    return rows


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 5), dilation=st.integers(1, 2),
       pb=st.integers(0, 3), pa=st.integers(0, 3))
def test_property_unread_rows_are_those_rounding_up_would_read(size, kernel, stride, dilation, pb, pa):
    """The rule warns exactly when flooring leaves out a real row that rounding up reads."""
    eff = dilation * (kernel - 1) + 1
    assume(size + pb + pa >= eff and pb < eff and pa < eff)
    kw = dict(stride=stride, dilation=dilation, pad_before=pb, pad_after=pa)
    floor = axis_geometry(size, kernel, fit="crop", **kw)
    ceil = axis_geometry(size, kernel, fit="pad", **kw)
    lost_rows = _covered(ceil, size) - _covered(floor, size)
    assert bool(_unread(floor, "crop")) == bool(lost_rows)
    assert _unread(ceil, "pad") == 0
    if lost_rows:  # the unread rows are the last ones of the input
        assert max(lost_rows) == size - 1


def test_python_warnings():
    with pytest.warns(SizingWarningCategory, match="pool-size"):
        lint(parse("INPUT[32x32x3] -> POOL4"), warn=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lint(parse("INPUT[32x32x3] -> POOL2"), warn=True)
