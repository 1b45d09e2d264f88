"""Layers describe themselves (issue 15): one registry of classes, and each class declares its kind,
its automatic-name prefix, its spelling in the pattern language, its cost and its footprint —
which the pattern language, the net, the summary, the costs and the memory model only ask."""
import numpy as np
import pytest

from convnet import zoo
from convnet.analysis.costs import layer_cost
from convnet.analysis.footprint import footprint
from convnet.errors import ConfigError
from convnet.layers import LAYERS, Add, Conv2D, Layer
from convnet.layers.accounting import Footprint, LayerCost
from convnet.net import Net
from convnet.pattern import parse, to_pattern


def test_kinds_and_pattern_words_name_one_class_each():
    kinds = [cls.kind for cls in LAYERS]
    assert len(set(kinds)) == len(kinds)
    words = [w for cls in LAYERS for w in cls.pattern_words]
    assert len(set(words)) == len(words)
    assert all(w == w.upper() for w in words)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_every_registered_class_states_its_prefix_cost_and_footprint(cls):
    assert cls.name_prefix and cls.name_prefix == cls.name_prefix.lower()
    assert cls.cost is not Layer.cost
    assert cls.footprint is not Layer.footprint


#: one instance of every class with a pattern spelling, and its text
SPELLED = {
    "CONV3x5-8/S2x1/P0x1/G2/D2/NOBIAS/CEIL": "Conv2D",
    "CONV1-4/SAME": "Conv2D",
    "POOL3/S2/P1/FLOOR": "MaxPool2D",
    "AVGPOOL2": "AvgPool2D",
    "L2POOL3/S1": "L2Pool2D",
    "GAP": "GlobalAvgPool",
    "FC-7/NOBIAS": "Dense",
    "FLATTEN": "Flatten",
    "LRN": "LRN",
    "BN": "BatchNorm",
    "RELU": "ReLU",
    "LRELU-0.3": "LeakyReLU",
    "DROPOUT-0.25": "Dropout",
    "DECONV4x3-8/S2/P1/G2/D2/NOBIAS": "ConvTranspose2D",
    "SOFTMAX-HW": "Softmax",
    "LOGSOFTMAX": "LogSoftmax",
    "GMP": "GlobalMaxPool",
    "GLPPOOL-3": "GlobalLpPool",
    "LPPOOL3-4/S1/P1/D2": "LpPool2D",
    "SIGMOID": "Sigmoid",
    "RELU6": "ReLU6",
    "IDENTITY": "Identity",
    "AFFINE": "ChannelAffine",
    "SHUFFLE-4": "ChannelShuffle",
}


@pytest.mark.parametrize("text", sorted(SPELLED))
def test_each_spelling_parses_to_its_class_and_writes_itself_back(text):
    layer = parse(text).layers[0]
    assert type(layer).__name__ == SPELLED[text]
    assert layer.to_pattern() == text


def test_every_class_with_words_has_a_spelling_here():
    assert {cls.__name__ for cls in LAYERS if cls.pattern_words} == set(SPELLED.values())


def test_a_layer_without_a_spelling_says_so():
    with pytest.raises(ConfigError, match="has no spelling in the pattern language"):
        Add().to_pattern()


class Scale(Layer):
    """A custom layer that declares nothing but its kind: the defaults apply."""

    kind = "SCALE"

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        return 2 * x

    def backward(self, dy):
        return 2 * dy


def test_a_custom_layer_gets_the_defaults():
    net = Net.sequential([Conv2D(2, 1), Scale(), Scale()], input_shape=(3, 3, 1))
    assert [n.name for n in net.nodes] == ["conv1", "scale1", "scale2"]  # the kind in lower case
    assert net.ownership().writes_into == {}  # never in place, never overwritten
    assert layer_cost(net["scale1"], [(3, 3, 2)], (3, 3, 2)) == LayerCost()
    assert footprint(net["scale1"], [(3, 3, 2)], (3, 3, 2), batch=2, itemsize=4, train=True) == Footprint(
        keeps_input=True)
    with pytest.raises(ConfigError, match="no spelling"):
        to_pattern(net)


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "googlenet", "alexnet", "resnet20_cifar"])
def test_analysis_asks_the_layers(name):
    net = zoo.get(name)
    shapes = net.shapes()
    for node in net.nodes:
        ins = [shapes[i] for i in node.inputs]
        assert layer_cost(node.layer, ins, shapes[node.name]) == node.layer.cost(ins, shapes[node.name])
        fp = footprint(node.layer, ins, shapes[node.name], batch=3, itemsize=4, train=True)
        assert fp == node.layer.footprint(ins, shapes[node.name], batch=3, itemsize=4, train=True)
    assert net.num_params() == sum(layer_cost(n.layer, [shapes[i] for i in n.inputs], shapes[n.name]).params
                                   for n in net.nodes)


def test_counted_parameters_are_the_built_ones():
    net = zoo.get("resnet20_cifar")
    counted = net.num_params()
    assert net.build(rng=np.random.default_rng(0)).num_params() == counted
