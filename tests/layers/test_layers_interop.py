"""The layers issue 16 (ONNX and PyTorch interop) needs: ConvTranspose2D, Softmax, LogSoftmax,
GlobalMaxPool, GlobalLpPool, LpPool2D, dilated pooling, Sigmoid, Clip, ReLU6, Identity,
ChannelAffine, Mul, ChannelShuffle, Concat on any axis, Dense's alpha/beta — each: shapes,
params/grads, backward by finite differences (float64, random dy), the matching PyTorch module,
what it says about itself (kind, prefix, cost, footprint, spelling), and nets that use them."""
from __future__ import annotations

import math

import numpy as np
import pytest

from convnet import summary
from convnet.analysis import summarize
from convnet.analysis.memory import MemoryModel
from convnet.errors import ConfigError, GeometryError, PatternSyntaxError, ShapeError
from convnet.layers import (
    LAYERS,
    AvgPool2D,
    ChannelAffine,
    ChannelShuffle,
    Clip,
    Concat,
    Conv2D,
    ConvTranspose2D,
    Dense,
    GlobalAvgPool,
    GlobalLpPool,
    GlobalMaxPool,
    Identity,
    L2Pool2D,
    LogSoftmax,
    LpPool2D,
    MaxPool2D,
    Mul,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
)
from convnet.net import Net
from convnet.pattern import parse, to_pattern
from oracle import (
    assert_close,
    away_from_zero,
    distinct_values,
    gradcheck,
    n,
    nchw_to_nhwc,
    nhwc_to_nchw,
    t,
)

F64 = np.float64

# (id, factory, per-sample input shape, input kind)
CASES = [
    ("deconv", lambda: ConvTranspose2D(3, 3, stride=2, padding=1, output_padding=1, dtype=F64), (3, 4, 2), "normal"),
    ("deconv_grouped_nobias", lambda: ConvTranspose2D(4, (2, 3), stride=(2, 1), padding=((0, 1), (1, 0)),
                                                      dilation=(1, 2), groups=2, use_bias=False, dtype=F64),
     (3, 3, 4), "normal"),
    ("softmax_channels", lambda: Softmax(dtype=F64), (2, 3, 4), "normal"),
    ("softmax_map", lambda: Softmax(axis=(1, 2), dtype=F64), (2, 3, 2), "normal"),
    ("logsoftmax", lambda: LogSoftmax(axis=-3, dtype=F64), (3, 2, 2), "normal"),
    ("softmax_vector", lambda: Softmax(dtype=F64), (5,), "normal"),
    ("gmp", lambda: GlobalMaxPool(dtype=F64), (3, 4, 2), "distinct"),
    ("glp", lambda: GlobalLpPool(3, dtype=F64), (3, 2, 2), "kink"),
    ("lppool", lambda: LpPool2D((2, 3), p=1.5, stride=1, padding=(1, 1), dilation=(1, 2), dtype=F64), (3, 5, 2),
     "kink"),
    ("l2pool_dilated", lambda: L2Pool2D(2, stride=1, dilation=2, dtype=F64), (4, 4, 1), "normal"),
    ("maxpool_dilated", lambda: MaxPool2D(2, stride=1, dilation=(2, 1), dtype=F64), (4, 3, 2), "distinct"),
    ("avgpool_dilated", lambda: AvgPool2D(2, stride=2, padding=1, dilation=2, fit="pad", dtype=F64), (5, 4, 1),
     "normal"),
    ("sigmoid", lambda: Sigmoid(dtype=F64), (3, 2, 2), "normal"),
    ("clip", lambda: Clip(-0.5, 0.7, dtype=F64), (3, 2, 2), "clip"),
    ("relu6", lambda: ReLU6(dtype=F64), (3, 2, 2), "relu6"),
    ("identity", lambda: Identity(dtype=F64), (2, 3, 2), "normal"),
    ("affine", lambda: ChannelAffine(dtype=F64), (2, 3, 4), "normal"),
    ("affine_vector", lambda: ChannelAffine(dtype=F64), (4,), "normal"),
    ("shuffle", lambda: ChannelShuffle(3, dtype=F64), (2, 2, 6), "normal"),
    ("dense_gemm", lambda: Dense(3, alpha=0.5, beta=-2.0, dtype=F64), (2, 2, 2), "normal"),
]
IDS = [c[0] for c in CASES]


def draw(kind, rng, shape):
    if kind == "distinct":
        return distinct_values(rng, shape)
    if kind == "kink":
        return away_from_zero(rng, shape, margin=1e-2)
    x = rng.standard_normal(shape) * (4 if kind == "relu6" else 1)
    for bound in {"clip": (-0.5, 0.7), "relu6": (0.0, 6.0)}.get(kind, ()):
        x[np.abs(x - bound) < 1e-3] += 0.01
    return x


def built(factory, input_shape, seed=0):
    layer = factory()
    layer.build(input_shape, rng=np.random.default_rng(seed))
    prng = np.random.default_rng(seed + 100)
    for k, v in layer.params.items():
        layer.params[k] = (v + 0.3 * prng.standard_normal(v.shape)).astype(v.dtype)
    return layer


@pytest.mark.parametrize("factory, input_shape, kind", [c[1:] for c in CASES], ids=IDS)
def test_shapes_params_and_grads(factory, input_shape, kind, rng):
    layer = built(factory, input_shape)
    x = draw(kind, rng, (2, *input_shape))
    y = layer.forward(x, train=True)
    assert y.shape == (2, *layer.output_shape(input_shape)) and y.dtype == F64
    dx = layer.backward(rng.standard_normal(y.shape))
    assert dx.shape == x.shape
    assert set(layer.params) == set(layer.grads)
    for k in layer.params:
        assert layer.grads[k].shape == layer.params[k].shape and layer.grads[k].dtype == F64, k
    y2 = layer.forward(x, keep_cache=False)  # inference: the same numbers, nothing kept
    assert_close(y2, y) and layer._cache is None


@pytest.mark.parametrize("factory, input_shape, kind", [c[1:] for c in CASES], ids=IDS)
def test_backward_matches_finite_differences(factory, input_shape, kind, rng):
    layer = built(factory, input_shape)
    x = draw(kind, rng, (2, *input_shape))
    names = list(layer.params)

    def f(x, **params):
        layer.params.update(params)
        return layer.forward(x, keep_cache=False)

    def vjp(dy, x, **params):
        layer.params.update(params)
        layer.forward(x)
        return {"x": layer.backward(dy), **{k: layer.grads[k] for k in names}}

    gradcheck(f, vjp, {"x": x, **{k: v.copy() for k, v in layer.params.items()}}, rng=rng, mode="auto",
              max_full=150, rtol=1e-5)


# -- PyTorch modules ---------------------------------------------------------------------------------
def _torch_pair(torch, name):
    """(our layer, the torch module, how to load our weights into it); images NCHW on the torch side."""
    nn = torch.nn
    if name == "deconv":
        ours = ConvTranspose2D(6, (3, 4), stride=(2, 3), padding=(1, 2), output_padding=(1, 2), dilation=(1, 2),
                               groups=2, dtype=F64)
        theirs = nn.ConvTranspose2d(4, 6, (3, 4), stride=(2, 3), padding=(1, 2), output_padding=(1, 2),
                                    dilation=(1, 2), groups=2).double()

        def load(layer, module):
            with torch.no_grad():
                module.weight.copy_(t(torch, layer.params["w"].transpose(3, 2, 0, 1)))
                module.bias.copy_(t(torch, layer.params["b"]))
        return ours, theirs, load
    simple = {
        "sigmoid": (Sigmoid(dtype=F64), nn.Sigmoid()),
        "relu6": (ReLU6(dtype=F64), nn.ReLU6()),
        "hardtanh": (Clip(-1, 2, inclusive=False, dtype=F64), nn.Hardtanh(-1, 2)),
        "identity": (Identity(dtype=F64), nn.Identity()),
        "softmax": (Softmax(dtype=F64), nn.Softmax(dim=1)),  # NCHW channels = our -1
        "logsoftmax_h": (LogSoftmax(axis=1, dtype=F64), nn.LogSoftmax(dim=2)),
        "gmp": (GlobalMaxPool(dtype=F64), nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())),
        "maxpool_dilated": (MaxPool2D(3, stride=2, padding=1, dilation=2, fit="pad", dtype=F64),
                            nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True)),
        "shuffle": (ChannelShuffle(2, dtype=F64), nn.ChannelShuffle(2)),
        "lppool_even_p": (LpPool2D(2, p=4, fit="crop", dtype=F64), nn.LPPool2d(4, 2)),
    }
    ours, theirs = simple[name]
    return ours, theirs, None


TORCH_NAMES = ["deconv", "sigmoid", "relu6", "hardtanh", "identity", "softmax", "logsoftmax_h", "gmp",
               "maxpool_dilated", "shuffle", "lppool_even_p"]


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_layer_matches_its_torch_module(name, rng, torch):
    layer, module, load = _torch_pair(torch, name)
    x = distinct_values(rng, (2, 5, 6, 4)) * 20  # spread: the bounds of ReLU6 and Hardtanh both hit
    layer.build(x.shape[1:], rng=np.random.default_rng(0))
    if load:
        load(layer, module)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    yt = module(xt)
    image = yt.ndim == 4
    yt.backward(t(torch, nhwc_to_nchw(dy) if image else dy))
    assert_close(y, nchw_to_nhwc(n(yt)) if image else n(yt))
    assert_close(layer.backward(dy), nchw_to_nhwc(n(xt.grad)))
    if load:
        assert_close(layer.grads["w"], n(module.weight.grad).transpose(2, 3, 1, 0))
        assert_close(layer.grads["b"], n(module.bias.grad))


def test_squeeze_excitation_block_matches_torch(rng, torch):
    """GAP -> FC -> RELU -> FC -> SIGMOID gating the map through Mul (MobileNetV3/EfficientNet's SE),
    built as a branched net, against the same block in PyTorch."""
    net = Net(input_shape=(4, 5, 6))
    net.add(Conv2D(6, 3, padding=1, dtype=F64), name="conv")
    net.add(GlobalAvgPool(dtype=F64), inputs=["conv"], name="squeeze")
    net.add(Dense(3, dtype=F64), name="fc1")
    net.add(ReLU(dtype=F64), name="relu")
    net.add(Dense(6, dtype=F64), name="fc2")
    net.add(Sigmoid(dtype=F64), name="gate")
    net.add(Mul(dtype=F64), inputs=["conv", "gate"], name="excite")
    net.build(rng=np.random.default_rng(1))
    x = rng.standard_normal((2, 4, 5, 6))
    y = net.forward(x, train=True)
    dy = rng.standard_normal(y.shape)
    dx = net.backward(dy)

    conv = torch.nn.Conv2d(6, 6, 3, padding=1).double()
    fc1, fc2 = torch.nn.Linear(6, 3).double(), torch.nn.Linear(3, 6).double()
    with torch.no_grad():
        conv.weight.copy_(t(torch, net["conv"].params["w"].transpose(3, 2, 0, 1)))
        conv.bias.copy_(t(torch, net["conv"].params["b"]))
        for ours, theirs in ((net["fc1"], fc1), (net["fc2"], fc2)):
            theirs.weight.copy_(t(torch, ours.params["w"].T))
            theirs.bias.copy_(t(torch, ours.params["b"]))
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    c = conv(xt)
    gate = torch.sigmoid(fc2(torch.relu(fc1(c.mean(dim=(2, 3))))))
    yt = c * gate[:, :, None, None]
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)))
    assert_close(dx, nchw_to_nhwc(n(xt.grad)))
    assert_close(net["fc1"].grads["w"], n(fc1.weight.grad).T)
    assert_close(net["conv"].grads["w"], n(conv.weight.grad).transpose(2, 3, 1, 0))


def test_a_decoder_net_runs_and_its_first_layer_skips_dx(rng):
    """An upsampling path (DECONV) first in a net: training skips its input gradient."""
    net = parse("INPUT[4x4x8] -> DECONV4-6/S2/P1 -> RELU6 -> DECONV2-3/S2 -> SIGMOID")
    net.build(rng=np.random.default_rng(0))
    assert net.output_shape() == (16, 16, 3)
    x = rng.standard_normal((2, 4, 4, 8)).astype(np.float32)
    y = net.forward(x, train=True)
    assert y.shape == (2, 16, 16, 3) and np.all((y > 0) & (y < 1))
    assert net.backward(rng.standard_normal(y.shape).astype(np.float32), input_grad=False) is None
    assert net["deconv1"].grads["w"].any()


# -- what the layers say about themselves -------------------------------------------------------------
NEW = [ConvTranspose2D, Softmax, LogSoftmax, GlobalMaxPool, GlobalLpPool, LpPool2D, Sigmoid, Clip, ReLU6, Identity,
       ChannelAffine, Mul, ChannelShuffle]


def test_registered_with_kinds_and_prefixes():
    assert all(cls in LAYERS for cls in NEW)
    got = {cls.__name__: (cls.kind, cls.name_prefix) for cls in NEW}
    assert got == {
        "ConvTranspose2D": ("DECONV", "deconv"), "Softmax": ("PROB", "softmax"),
        "LogSoftmax": ("LOGSOFTMAX", "logsoftmax"), "GlobalMaxPool": ("GMP", "gmp"),
        "GlobalLpPool": ("GLPPOOL", "glp"), "LpPool2D": ("LPPOOL", "pool"), "Sigmoid": ("SIGMOID", "sigmoid"),
        "Clip": ("CLIP", "clip"), "ReLU6": ("RELU6", "relu6_"), "Identity": ("IDENTITY", "identity"),
        "ChannelAffine": ("AFFINE", "affine"), "Mul": ("MUL", "mul"), "ChannelShuffle": ("SHUFFLE", "shuffle"),
    }


def test_deconv_cost_is_the_transposed_convolutions():
    layer = ConvTranspose2D(16, 4, stride=2, padding=1, groups=2)
    out = layer.output_shape((8, 8, 32))
    assert out == (16, 16, 16)
    cost = layer.cost([(8, 8, 32)], out)
    macs = 8 * 8 * 32 * 4 * 4 * 16 // 2
    assert (cost.weights, cost.biases, cost.macs) == (4 * 4 * 8 * 32, 16, macs)
    assert (cost.flops_forward, cost.flops_backward) == (2 * macs + 16 * 16 * 16, 4 * macs + 16 * 16 * 16)
    # the same MACs as the convolution it transposes (16 -> 32 channels, 16x16 -> 8x8)
    conv = Conv2D(32, 4, stride=2, padding=1, groups=2)
    assert conv.cost([(16, 16, 16)], conv.output_shape((16, 16, 16))).macs == macs
    layer.build((8, 8, 32), rng=np.random.default_rng(0))
    assert layer.params["w"].shape == (4, 4, 8, 32) and layer.num_params() == cost.params


@pytest.mark.parametrize("factory, input_shape, kind", [c[1:] for c in CASES], ids=IDS)
def test_cost_and_footprint_are_stated(factory, input_shape, kind):
    layer = factory()
    out = layer.output_shape(input_shape)
    cost = layer.cost([input_shape], out)
    layer.build(input_shape, rng=np.random.default_rng(0))
    assert cost.params == layer.num_params()
    for train in (True, False):
        fp = layer.footprint([input_shape], out, batch=3, itemsize=8, train=train)
        assert fp.cache_bytes >= 0 and fp.forward_scratch >= 0 and fp.backward_scratch >= 0
        if not train:
            assert fp.cache_bytes == 0


def test_identity_is_a_view_and_dx_is_dy():
    layer = Identity()
    fp = layer.footprint([(2, 2, 3)], (2, 2, 3), batch=2, itemsize=4, train=True)
    assert fp.output_is_view and fp.dx_is_dy
    x = np.ones((2, 2, 2, 3), dtype=np.float32)
    assert layer.forward(x) is x
    dy = np.ones_like(x)
    assert layer.backward(dy) is dy


# -- spellings ------------------------------------------------------------------------------------------
SPELLINGS = {
    "DECONV4-16/S2/P1": ("ConvTranspose2D", dict(filters=16, kernel_size=(4, 4), stride=(2, 2))),
    "CONVT3x2-8/S2x1/G2/D2/NOBIAS": ("ConvTranspose2D", dict(kernel_size=(3, 2), groups=2, use_bias=False)),
    "SOFTMAX-C": ("Softmax", dict(axis=-1)),
    "PROB": ("Softmax", dict(axis=-1)),
    "SOFTMAX-HW": ("Softmax", dict(axis=(-3, -2))),
    "LOGSOFTMAX": ("LogSoftmax", dict(axis=-1)),
    "LOGSOFTMAX-WH": ("LogSoftmax", dict(axis=(-3, -2))),
    "GMP": ("GlobalMaxPool", {}),
    "GLPPOOL-3": ("GlobalLpPool", dict(p=3.0)),
    "LPPOOL3-4/S1/D2": ("LpPool2D", dict(p=4.0, dilation=(2, 2), stride=(1, 1))),
    "LPPOOL2": ("LpPool2D", dict(p=2.0)),
    "L2POOL3/S1/D2": ("L2Pool2D", dict(p=2.0, dilation=(2, 2))),
    "POOL3/S2/P2/D2": ("MaxPool2D", dict(dilation=(2, 2))),
    "AVGPOOL2/D1x2/FLOOR": ("AvgPool2D", dict(dilation=(1, 2), fit="crop")),
    "SIGMOID": ("Sigmoid", {}),
    "RELU6": ("ReLU6", dict(min=0.0, max=6.0, inclusive=False)),
    "IDENTITY": ("Identity", {}),
    "AFFINE": ("ChannelAffine", {}),
    "SHUFFLE-4": ("ChannelShuffle", dict(groups=4)),
}


@pytest.mark.parametrize("text", sorted(SPELLINGS))
def test_spelling_parses_to_the_class_and_back(text):
    cls, attrs = SPELLINGS[text]
    layer = parse(text).layers[0]
    assert type(layer).__name__ == cls
    for k, v in attrs.items():
        assert getattr(layer, k) == v, k
    again = parse(layer.to_pattern()).layers[0]
    assert again.to_pattern() == layer.to_pattern()
    assert {k: getattr(again, k) for k in attrs} == attrs


def test_a_pattern_net_with_every_new_word_round_trips():
    text = ("INPUT[8x8x4] -> DECONV4-6/S2/P1 -> SIGMOID -> RELU6 -> POOL3/S1/P2/D2 -> LPPOOL2-3 -> AVGPOOL2 -> "
            "SHUFFLE-2 -> AFFINE -> IDENTITY -> SOFTMAX-C -> LOGSOFTMAX-HW -> GMP -> FC-10 -> SOFTMAX")
    net = parse(text)
    assert to_pattern(net) == text and net.head == "softmax"
    assert [node.name for node in net.nodes] == [
        "deconv1", "sigmoid1", "relu6_1", "pool1", "pool2", "pool3", "shuffle1", "affine1", "identity1", "softmax1",
        "logsoftmax1", "gmp1", "fc1"]
    assert net.output_shape() == (10,)
    rows = summarize(net, batch=2)
    assert rows["deconv1"].type == "DECONV" and rows["softmax1"].type == "PROB"
    assert "DECONV" in str(summary(net))


@pytest.mark.parametrize("layer, why", [
    (ConvTranspose2D(4, 3, stride=2, output_padding=1), "output_padding"),
    (ConvTranspose2D(4, 3, padding=((1, 0), (0, 0))), "asymmetric"),
    (Clip(-1, 1), "no spelling"),
    (Softmax(axis=(1, 2)), "not H, W or C"),
    (Dense(3, alpha=2.0), "alpha=2"),
])
def test_what_the_language_cannot_write_says_so(layer, why):
    with pytest.raises(ConfigError, match=why):
        layer.to_pattern()


def test_a_built_layer_writes_its_positive_axes_as_letters():
    layer = Softmax(axis=(1, 2))
    layer.build((3, 4, 5))
    assert layer.to_pattern() == "SOFTMAX-HW"


@pytest.mark.parametrize("text, expected", [
    ("SOFTMAX-X", "letters of H, W and C"),
    ("SOFTMAX-CC", "letters of H, W and C"),
    ("SOFTMAX-", "SOFTMAX-C"),
    ("DECONV3/S2", "DECONV<F>-<K>"),
    ("LPPOOL2-0.5", "p >= 1"),
    ("GLPPOOL-x", "GLPPOOL-<p>"),
    ("SHUFFLE", "SHUFFLE-<g>"),
    ("SIGMOID/S2", "SIGMOID alone"),
    ("DECONV3-4/SAME", "/S<stride>"),
    ("FC-10 -> SOFTMAX -> RELU", "SOFTMAX only at the end"),
])
def test_pattern_errors(text, expected):
    with pytest.raises(PatternSyntaxError) as info:
        parse(text)
    assert expected in info.value.expected, str(info.value)


# -- constructor checks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, match", [
    (lambda: ConvTranspose2D(4, 3, stride=2, output_padding=2), ConfigError, "output_padding"),
    (lambda: ConvTranspose2D(4, 3, padding="same"), ConfigError, "'same'"),
    (lambda: ConvTranspose2D(5, 3, groups=2), ConfigError, "divisible"),
    (lambda: Softmax(axis=0), ConfigError, "batch axis"),
    (lambda: Softmax(axis=(1, 1)), ConfigError, "distinct"),
    (lambda: LpPool2D(2, p=0.5), ConfigError, "`p`"),
    (lambda: GlobalLpPool(float("inf")), ConfigError, "`p`"),
    (lambda: Clip(2, 1), ConfigError, "greater"),
    (lambda: ChannelShuffle(0), ConfigError, "groups"),
    (lambda: Concat(axis=0), ConfigError, "batch axis"),
    (lambda: Dense(3, beta=float("nan")), ConfigError, "beta"),
])
def test_constructors_refuse_bad_settings(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_shape_errors_name_the_layer(rng):
    with pytest.raises(ShapeError, match="divisible by groups=4"):
        ChannelShuffle(4, name="s").output_shape((2, 2, 6))
    with pytest.raises(ShapeError, match="batch axis"):
        Softmax(axis=-2).output_shape((5,))
    with pytest.raises(ShapeError, match="out of range"):
        Softmax(axis=-3).output_shape((5,))
    with pytest.raises(GeometryError, match="output rows"):
        ConvTranspose2D(2, 2, padding=2).output_shape((1, 1, 3))
    with pytest.raises(ShapeError, match="do not broadcast"):
        Mul().output_shape([(2, 3, 4), (2, 3, 5)])


def test_concat_along_the_height(rng):
    net = Net(input_shape=(3, 4, 2))
    net.add(Conv2D(2, 1, dtype=F64), name="a")
    net.add(Conv2D(2, (2, 1), dtype=F64), inputs=["input"], name="b")
    net.add(Concat(axis=1, dtype=F64), inputs=["a", "b"], name="cat")
    assert net.output_shape() == (5, 4, 2)
    net.build(rng=np.random.default_rng(0))
    x = rng.standard_normal((2, 3, 4, 2))
    y = net.forward(x, train=True)
    assert_close(y, np.concatenate([net["a"].forward(x), net["b"].forward(x)], axis=1))
    net.forward(x, train=True)
    assert net.backward(rng.standard_normal(y.shape)).shape == x.shape


def test_mul_accepts_larger_maps_with_the_same_channels(rng):
    layer = Mul()
    layer.build([(4, 4, 3), (3,)])
    y = layer.forward([rng.standard_normal((1, 6, 5, 3)).astype(np.float32),
                       rng.standard_normal((1, 3)).astype(np.float32)])
    assert y.shape == (1, 6, 5, 3)
    with pytest.raises(ShapeError):
        layer.forward([np.zeros((1, 6, 5, 4), np.float32), np.zeros((1, 4), np.float32)])


def test_memory_model_covers_the_new_layers():
    """The memory model replays a training step over these layers without complaint, and counts the
    deconvolution's input as kept (its dw needs it)."""
    net = parse("INPUT[8x8x8] -> DECONV4-8/S2/P1 -> SIGMOID -> POOL3/S1/P2/D2 -> SHUFFLE-2 -> AFFINE -> "
                "LPPOOL2-3 -> GMP -> FC-4")
    est = MemoryModel(net).estimate(4)
    assert est.activations_peak >= 4 * 4 * (8 * 8 * 8 + 16 * 16 * 8)  # deconv's input and sigmoid's output
    fp = net["deconv1"].footprint([(8, 8, 8)], (16, 16, 8), batch=4, itemsize=4, train=True)
    assert fp.keeps_input and fp.backward_scratch > 0
    assert math.isfinite(est.total)
