"""Sizing lint: the notes' rules of thumb."""
import warnings

import pytest

from convnet import zoo
from convnet.analysis.lint import SizingWarningCategory, lint
from convnet.pattern import parse


def rules(net):
    return [(w.rule, w.layer) for w in lint(net)]


def test_clean_net_has_no_warnings():
    assert lint(zoo.get("vgg16")) == []
    assert lint(parse("INPUT[32x32x3] -> [CONV3-16 -> RELU -> POOL2]*3 -> FC-10")) == []


def test_input_not_divisible_by_two_often_enough():
    assert rules(parse("INPUT[36x36x3] -> [CONV3-4 -> POOL2]*2 -> POOL3/S3 -> FC-2")) == []  # 36 = 2·2·9
    found = lint(parse("INPUT[28x28x3] -> [CONV3-4 -> POOL2]*2 -> CONV3-4 -> POOL2/FLOOR -> FC-2"))
    assert found[0].rule == "input-divisibility" and "28×28" in found[0].message
    assert ("uneven-geometry", "pool3") in [(w.rule, w.layer) for w in found]
    assert ("input-divisibility", "input") in rules(zoo.get("alexnet"))


def test_stride_one_conv_padding():
    found = lint(parse("INPUT[32x32x3] -> CONV5-8/P1 -> CONV3-8 -> CONV4-8"))
    assert [(w.rule, w.layer) for w in found] == [("conv-padding", "conv1"), ("conv-padding", "conv3")]
    assert "P = (F - 1) / 2 = 2" in found[0].message
    assert "even F" in found[1].message


def test_large_pooling_window():
    assert ("pool-size", "pool1") in rules(parse("INPUT[32x32x3] -> POOL4"))
    assert all(rule != "pool-size" for rule, _ in rules(parse("INPUT[33x33x3] -> POOL3/S2")))


def test_uneven_geometry():
    found = lint(parse("INPUT[32x32x3] -> CONV3-4/S2/P1/FLOOR -> POOL3/S2/CEIL"))
    assert [(w.rule, w.layer) for w in found if w.rule == "uneven-geometry"] == [
        ("uneven-geometry", "conv1"), ("uneven-geometry", "pool1")]
    assert "drops 1" in found[-2].message or "drops 1" in found[-1].message
    assert ("uneven-geometry", "conv1") in rules(zoo.get("resnet18"))
    assert ("uneven-geometry", "pool1/3x3_s2") in rules(zoo.get("googlenet"))


def test_python_warnings():
    with pytest.warns(SizingWarningCategory, match="pool-size"):
        lint(parse("INPUT[32x32x3] -> POOL4"), warn=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lint(parse("INPUT[32x32x3] -> POOL2"), warn=True)
