"""The zoo: parameter counts against torchvision and the papers, shapes against real forward passes."""
import numpy as np
import pytest

from convnet import zoo
from convnet.analysis import summarize
from convnet.errors import ConfigError

TORCHVISION = {
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}

#: the VGG paper's Table 2, "Number of parameters (in millions)"
VGG_PAPER_MILLIONS = {"vgg11": 133, "vgg11_lrn": 133, "vgg13": 133, "vgg16_c": 134, "vgg16": 138, "vgg19": 144}

OTHER_COUNTS = {
    "alexnet": 60_965_224,  # Caffe's bvlc_alexnet (grouped conv2/4/5)
    "googlenet": 6_998_552,  # Caffe's bvlc_googlenet without the auxiliary classifiers
    "lenet5": 61_706,
    "resnet20_cifar": 269_722,  # option A: the paper's "0.27M"
    "resnet56_cifar": 853_018,  # the paper's "0.85M"
    "allconvnet": 1_369_738,  # All-CNN-C, "1.4M"
}

#: reduced sizes for real forward/backward passes (2 cores, the whole suite in seconds)
SMALL = {
    "alexnet": {"input_shape": (67, 67, 3), "width": 0.125},
    "zfnet": {"input_shape": (64, 64, 3), "width": 0.125},
    "googlenet": {"input_shape": (64, 64, 3), "width": 0.125},
    "lenet5": {},
    "allconvnet": {"width": 0.25},
}


def small_kwargs(name):
    if name in SMALL:
        return SMALL[name]
    if name.startswith("vgg") or (name.startswith("resnet") and "cifar" not in name):
        return {"input_shape": (32, 32, 3), "width": 0.0625 if name.startswith("vgg") else 0.125}
    return {"width": 0.25}


@pytest.mark.parametrize("name, count", sorted(TORCHVISION.items()))
def test_parameter_counts_equal_torchvision(name, count):
    net = zoo.get(name)
    assert net.num_params() == count
    assert summarize(net).total_params == count


@pytest.mark.parametrize("name, millions", sorted(VGG_PAPER_MILLIONS.items()))
def test_vgg_paper_table(name, millions):
    assert round(zoo.get(name).num_params() / 1e6) == millions


@pytest.mark.parametrize("name, count", sorted(OTHER_COUNTS.items()))
def test_other_parameter_counts(name, count):
    assert zoo.get(name).num_params() == count


def test_cifar_option_b_adds_projections():
    a = zoo.get("resnet20_cifar").num_params()
    b = zoo.get("resnet20_cifar", shortcut="B").num_params()
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert "layer2.0.shortcut" in zoo.get("resnet20_cifar")
    assert "layer2.0.downsample.0" in zoo.get("resnet20_cifar", shortcut="B")
    with pytest.raises(ConfigError, match="shortcut"):
        zoo.get("resnet20_cifar", shortcut="C")


@pytest.mark.parametrize("name", zoo.names())
def test_summary_shapes_equal_a_real_forward_and_backward_runs(name):
    net = zoo.get(name, num_classes=7, **small_kwargs(name))
    summary = summarize(net, batch=2)
    rng = np.random.default_rng(0)
    net.build(rng=rng)
    x = rng.standard_normal((2, *net.input_shape)).astype(np.float32)
    seen = {}
    y = net.forward(x, train=True, observer=lambda n, a: seen.__setitem__(n, tuple(a.shape)))
    assert y.shape == (2, 7)
    for row in summary.rows[1:]:
        assert seen[row.name] == (2, *row.shape), row.name
        assert row.activations == 2 * int(np.prod(row.shape))
    assert summary.total_params == sum(p.size for _, p, _ in net.named_parameters())
    dx = net.backward(rng.standard_normal(y.shape).astype(np.float32))
    assert dx.shape == x.shape and np.isfinite(dx).all()
    for pname, p, g in net.named_parameters():
        assert g.shape == p.shape and np.isfinite(g).all(), pname
    assert net.predict(x).shape == (2, 7)


def test_full_size_output_shapes_from_shapes_alone():
    expect = {"alexnet": (55, 55, 96), "zfnet": (110, 110, 96), "googlenet": (112, 112, 64)}
    for name, shape in expect.items():
        net = zoo.get(name)
        assert net.shapes()[net.nodes[0].name] == shape
        assert net.output_shape() == (1000,)
    g = zoo.get("googlenet").shapes()
    assert g["inception_3a/output"] == (28, 28, 256)
    assert g["inception_4e/output"] == (14, 14, 832)
    assert g["inception_5b/output"] == (7, 7, 1024)
    assert zoo.get("alexnet").shapes()["pool5"] == (6, 6, 256)
    assert zoo.get("zfnet").shapes()["pool5"] == (6, 6, 256)
    r = zoo.get("resnet50").shapes()
    assert r["maxpool"] == (56, 56, 64) and r["layer4.2.relu3"] == (7, 7, 2048)
    assert zoo.get("allconvnet").shapes()["conv7"] == (6, 6, 192)


def test_layer_names_follow_the_papers():
    vgg = zoo.get("vgg16")
    assert {"conv1_1", "conv5_3", "pool5", "fc6", "fc7", "fc8"} <= {n.name for n in vgg.nodes}
    assert "norm1" in zoo.get("vgg11_lrn")
    assert vgg["conv3_3"].kernel_size == (3, 3) and zoo.get("vgg16_c")["conv3_3"].kernel_size == (1, 1)
    r = zoo.get("resnet50")
    assert r["layer1.0.conv2"].stride == (1, 1) and r["layer2.0.conv2"].stride == (2, 2)  # v1.5: stride on 3x3
    assert r["layer2.0.conv1"].stride == (1, 1)
    assert not r["layer1.0.conv1"].use_bias and r["layer1.0.downsample.0"].kernel_size == (1, 1)
    names = [n for n, _, _ in zoo.get("resnet18", width=0.125).build(rng=np.random.default_rng(0)).named_parameters()][:6]
    assert names == ["conv1.w", "bn1.gamma", "bn1.beta", "layer1.0.conv1.w", "layer1.0.bn1.gamma", "layer1.0.bn1.beta"]
    g = zoo.get("googlenet")
    assert "inception_3a/1x1" in g and "inception_5b/pool_proj" in g and "loss3/classifier" in g
    a = zoo.get("alexnet")
    assert [a[n].groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]
    assert a["pool1"].pool_size == (3, 3) and a["pool1"].stride == (2, 2)
    assert zoo.get("zfnet")["conv1"].kernel_size == (7, 7) and zoo.get("zfnet")["conv1"].stride == (2, 2)


def test_allconvnet_has_no_pooling():
    kinds = {type(layer).__name__ for layer in zoo.get("allconvnet").layers}
    assert not kinds & {"MaxPool2D", "AvgPool2D", "Dense"}


def test_googlenet_has_a_single_fc():
    assert [n.name for n in zoo.get("googlenet").nodes if type(n.layer).__name__ == "Dense"] == ["loss3/classifier"]


def test_num_classes_and_input_shape_arguments():
    net = zoo.get("resnet18", num_classes=10, input_shape=(64, 64, 3))
    assert net.output_shape() == (10,) and net.input_shape == (64, 64, 3)
    assert zoo.get("notes_deep", num_classes=100).output_shape() == (100,)


def test_registry():
    names = zoo.names()
    assert names == sorted(names)
    for required in ("lenet5", "alexnet", "zfnet", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19",
                     "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet20_cifar",
                     "resnet56_cifar", "allconvnet", "notes_linear", "notes_conv", "notes_conv_pool", "notes_deep"):
        assert required in names
    with pytest.raises(ConfigError, match="did you mean|Did you mean"):
        zoo.get("vgg161")
    with pytest.raises(ConfigError, match="num_classes"):
        zoo.get("vgg16", num_classes=0)
    with pytest.raises(ConfigError, match="width"):
        zoo.get("vgg16", width=0)
    assert "VGG" in zoo.describe("vgg16")


def test_builders_allocate_nothing():
    net = zoo.get("vgg19")
    assert not net.built and all(not layer.params for layer in net.layers)
