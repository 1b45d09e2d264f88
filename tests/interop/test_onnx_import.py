"""Issue 16: ``convnet.interop.onnx.load`` op by op — small graphs written with ``onnx.helper``, each
imported and run against onnxruntime on the same input (float32, max |diff| ≤ 1e-5·max|ref|),
and what each op becomes (layers, weights in HWIO, layouts); then the refusals: an op or attribute
convnet does not import is a ConfigError naming the node, the op, the attribute and what is supported.
"""
from __future__ import annotations

import numpy as np
import pytest

from oracle import require_module  # noqa: E402

onnx = require_module("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convnet.errors import ConfigError  # noqa: E402
from convnet.interop.onnx import convert, load  # noqa: E402
from convnet.layers import (  # noqa: E402
    LRN,
    Add,
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    ChannelShuffle,
    Clip,
    Concat,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    GlobalMaxPool,
    LeakyReLU,
    LogSoftmax,
    LpPool2D,
    MaxPool2D,
    Mul,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
)
from onnx_models import ort_run  # noqa: E402


@pytest.fixture(autouse=True)
def _uses_onnxruntime(ort):
    """Every test here compares with ONNX Runtime (the interop oracle: a failure, not a skip, in CI)."""


F = TensorProto.FLOAT


# -- building models ----------------------------------------------------------------------------------
class G:
    """A graph being written: ``g.node(op, inputs, **attrs)`` returns the output name; ``g.w(array)``
    adds an initializer and returns its name."""

    def __init__(self, shape=(2, 4, 9, 8), *, seed=0):
        self.rng = np.random.default_rng(seed)
        self.shape = shape
        self.nodes, self.inits, self.count = [], [], 0

    def w(self, value, name=None) -> str:
        name = name or f"w{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def rand(self, *shape, scale=0.5) -> str:
        return self.w((self.rng.standard_normal(shape) * scale).astype(np.float32))

    def node(self, op, inputs, *, name=None, outputs=1, **attrs):
        self.count += 1
        outs = [f"t{self.count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name or f"{op.lower()}{self.count}", **attrs))
        return outs[0] if outputs == 1 else outs

    def model(self, out, *, opset=13, batch=None, ir=8):
        shape = list(self.shape)
        if batch is not None:
            shape[0] = batch
        graph = helper.make_graph(self.nodes, "g", [helper.make_tensor_value_info("x", F, shape)],
                                  [helper.make_tensor_value_info(out, F, None)], initializer=self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)


def check(model, x=None, *, tol=1e-5, **kw):
    """Import ``model``, run it and onnxruntime on ``x``; return the import."""
    imported = convert(model, **kw)
    if x is None:
        dims = [d.dim_value or 2 for d in model.graph.input[0].type.tensor_type.shape.dim]
        x = np.random.default_rng(1).standard_normal(dims).astype(np.float32)
    (ref,) = ort_run(model, {"x": x})
    got = imported.run(x)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert np.abs(got - ref).max() <= tol * max(np.abs(ref).max(), 1e-30)
    return imported


def layers(imported):
    return [n.layer for n in imported.net.nodes]


def kinds(imported):
    return [type(layer) for layer in layers(imported)]


# -- convolution and pooling ----------------------------------------------------------------------------
CONVS = {
    "3x3 pads 1, bias": dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "3x5 stride (2,1), asymmetric pads, dilation (1,2)": dict(kernel_shape=[3, 5], strides=[2, 1],
                                                               pads=[0, 1, 2, 1], dilations=[1, 2]),
    "groups 2": dict(kernel_shape=[3, 3], group=2, pads=[1, 1, 1, 1]),
    "depthwise": dict(kernel_shape=[3, 3], group=4, strides=[2, 2]),
    "SAME_UPPER, even kernel, stride 2": dict(kernel_shape=[4, 4], strides=[2, 2], auto_pad="SAME_UPPER"),
    "SAME_LOWER, even kernel, stride 2": dict(kernel_shape=[4, 4], strides=[2, 2], auto_pad="SAME_LOWER"),
    "VALID, the last row never read": dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"),
}


@pytest.mark.parametrize("attrs", CONVS.values(), ids=list(CONVS))
def test_conv(attrs):
    g = G()
    kh, kw = attrs["kernel_shape"]
    k, group = 6, attrs.get("group", 1)
    w = (g.rng.standard_normal((k if group != 4 else 4, 4 // group, kh, kw)) * 0.5).astype(np.float32)
    b = g.rng.standard_normal(w.shape[0]).astype(np.float32)
    out = g.node("Conv", ["x", g.w(w), g.w(b)], name="conv", **attrs)
    imported = check(g.model(out))
    (conv,) = layers(imported)
    assert isinstance(conv, Conv2D) and conv.name == "conv"
    np.testing.assert_array_equal(conv.params["w"], w.transpose(2, 3, 1, 0))  # OIHW -> HWIO
    np.testing.assert_array_equal(conv.params["b"], b)


CONV_TRANSPOSES = {
    "stride 2, pads 1, output_padding 1": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                               output_padding=[1, 1]),
    "groups 2, asymmetric pads": dict(kernel_shape=[3, 2], strides=[2, 3], pads=[0, 1, 1, 0], group=2),
    "dilation 2": dict(kernel_shape=[3, 3], dilations=[2, 2]),
    "SAME_UPPER": dict(kernel_shape=[4, 4], strides=[2, 2], auto_pad="SAME_UPPER"),
    "output_shape": dict(kernel_shape=[3, 3], strides=[3, 2], output_shape=[28, 18]),
}


@pytest.mark.parametrize("attrs", CONV_TRANSPOSES.values(), ids=list(CONV_TRANSPOSES))
def test_conv_transpose(attrs):
    g = G()
    group = attrs.get("group", 1)
    kh, kw = attrs["kernel_shape"]
    out = g.node("ConvTranspose", ["x", g.rand(4, 6 // group, kh, kw), g.rand(6)], **attrs)
    assert kinds(check(g.model(out))) == [ConvTranspose2D]


POOLS = {
    "MaxPool 3/2 ceil_mode": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), 13),
    "MaxPool 2/1 pads (0,1,1,0)": ("MaxPool", dict(kernel_shape=[2, 2], pads=[0, 1, 1, 0]), 13),
    "MaxPool SAME_LOWER": ("MaxPool", dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_LOWER"), 13),
    "MaxPool dilations": ("MaxPool", dict(kernel_shape=[2, 2], dilations=[2, 1], strides=[1, 2]), 13),
    "AveragePool count_include_pad": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                                          count_include_pad=1), 13),
    "AveragePool excluding pad, ceil_mode": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2],
                                                                 pads=[1, 1, 1, 1], ceil_mode=1), 13),
    "AveragePool SAME_UPPER": ("AveragePool", dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_UPPER"), 13),
    "AveragePool dilations": ("AveragePool", dict(kernel_shape=[2, 2], dilations=[2, 2]), 19),
    "LpPool p=3": ("LpPool", dict(kernel_shape=[2, 2], strides=[2, 2], p=3), 18),
}


@pytest.mark.parametrize("op, attrs, opset", POOLS.values(), ids=list(POOLS))
def test_pooling(op, attrs, opset):
    g = G()
    imported = check(g.model(g.node(op, ["x"], **attrs), opset=opset, ir=9))
    assert kinds(imported) == [{"MaxPool": MaxPool2D, "AveragePool": AvgPool2D, "LpPool": LpPool2D}[op]]


def test_global_pools_lrn_batchnorm():
    g = G()
    c = 4
    bn = g.node("BatchNormalization", ["x", g.w(g.rng.uniform(0.5, 1.5, c).astype(np.float32)), g.rand(c),
                                       g.rand(c), g.w(g.rng.uniform(0.5, 1.5, c).astype(np.float32))], epsilon=1e-3)
    lrn = g.node("LRN", [bn], size=3, alpha=1e-2, beta=0.75, bias=1.5)
    avg = g.node("GlobalAveragePool", [lrn])
    mx = g.node("GlobalMaxPool", [lrn])
    out = g.node("Add", [avg, mx])
    imported = check(g.model(out))
    assert kinds(imported) == [BatchNorm, LRN, GlobalAvgPool, GlobalMaxPool, Add]
    assert imported.output.shape == (4, 1, 1) and imported.net.output_shape() == (4,)
    bn_layer = layers(imported)[0]
    assert bn_layer.eps == pytest.approx(1e-3) and bn_layer.state["running_var"].shape == (4,)


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_mean_and_max_over_the_spatial_axes_are_global_pooling(keepdims, opset):
    """How PyTorch exports ``x.mean((2, 3))``: ReduceMean over H and W (axes an input from opset 18)."""
    g = G()
    conv = g.node("Conv", ["x", g.rand(6, 4, 3, 3)], pads=[1, 1, 1, 1])
    axes = {"axes": [2, 3]} if opset < 18 else {}
    inputs = [conv] if opset < 18 else [conv, g.w(np.array([-1, -2], dtype=np.int64))]
    mean = g.node("ReduceMean", inputs, keepdims=keepdims, **axes)
    top = g.node("ReduceMax", inputs, keepdims=keepdims, **axes)
    out = g.node("Add", [mean, top])
    if keepdims == 0:
        out = g.node("Gemm", [out, g.rand(6, 3)])
    imported = check(g.model(out, opset=opset))
    assert GlobalAvgPool in kinds(imported) and GlobalMaxPool in kinds(imported)


def test_reduce_mean_over_the_channels_is_refused():
    g = G()
    out = g.node("ReduceMean", ["x"], axes=[1], keepdims=1)
    _refused(g.model(out), "ReduceMean", "axes", "[2, 3]")


def test_batch_norm_written_as_mul_and_add_is_one_channel_affine():
    g = G()
    conv = g.node("Conv", ["x", g.rand(6, 4, 3, 3)], kernel_shape=[3, 3])
    scale = g.node("Unsqueeze", [g.w(g.rng.uniform(0.5, 1.5, 6).astype(np.float32)), g.w(np.array([1, 2]))])
    mul = g.node("Mul", [conv, scale])
    add = g.node("Add", [g.w((g.rng.standard_normal((1, 6, 1, 1)) * 0.1).astype(np.float32)), mul])
    imported = check(g.model(g.node("Relu", [add])))
    assert kinds(imported) == [Conv2D, ChannelAffine, ReLU]


def test_a_bias_added_after_conv_or_matmul_is_fused():
    g = G()
    conv = g.node("Conv", ["x", g.rand(6, 4, 3, 3)], kernel_shape=[3, 3])
    biased = g.node("Add", [conv, g.rand(1, 6, 1, 1)])
    pooled = g.node("GlobalAveragePool", [biased])
    flat = g.node("Flatten", [pooled])
    mm = g.node("MatMul", [flat, g.rand(6, 5)])
    out = g.node("Add", [mm, g.rand(5)])
    imported = check(g.model(out))
    conv_l, _, dense = layers(imported)
    assert kinds(imported) == [Conv2D, GlobalAvgPool, Dense] and conv_l.use_bias and dense.use_bias


# -- activations ----------------------------------------------------------------------------------------
ACTIVATIONS = {
    "Relu": (lambda g: g.node("Relu", ["x"]), ReLU, 13),
    "LeakyRelu": (lambda g: g.node("LeakyRelu", ["x"], alpha=0.2), LeakyReLU, 13),
    "Sigmoid": (lambda g: g.node("Sigmoid", ["x"]), Sigmoid, 13),
    "Clip (0, 6): ReLU6": (lambda g: g.node("Clip", ["x", g.w(np.float32(0)), g.w(np.float32(6))]), ReLU6, 13),
    "Clip (0, none): ReLU": (lambda g: g.node("Clip", ["x", g.w(np.float32(0))]), ReLU, 13),
    "Clip (-0.5, 0.7)": (lambda g: g.node("Clip", ["x", g.w(np.float32(-0.5)), g.w(np.float32(0.7))]), Clip, 13),
    "Clip opset 6 attributes": (lambda g: g.node("Clip", ["x"], min=-0.25, max=1.0), Clip, 6),
    "Dropout": (lambda g: g.node("Dropout", ["x", g.w(np.float32(0.3))]), Dropout, 13),
}


@pytest.mark.parametrize("make, cls, opset", ACTIVATIONS.values(), ids=list(ACTIVATIONS))
def test_activation(make, cls, opset):
    g = G()
    x = np.random.default_rng(2).standard_normal(g.shape).astype(np.float32) * 4
    assert kinds(check(g.model(make(g), opset=opset, ir=3 if opset < 7 else 8), x)) == [cls]


def test_identity_and_cast_pass_the_value_on():
    g = G()
    out = g.node("Relu", [g.node("Cast", [g.node("Identity", ["x"])], to=F)])
    assert kinds(check(g.model(out))) == [ReLU]


# -- FC after a map: the CHW -> HWC row permutation -----------------------------------------------------
def _conv_then(g):
    return g.node("Relu", [g.node("Conv", ["x", g.rand(5, 4, 3, 3)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])


def _flatten(g, y):
    return g.node("Flatten", [y])


def _reshape_minus_one(g, y):
    return g.node("Reshape", [y, g.w(np.array([2, -1]))])  # the model's batch size, then -1


def _reshape_from_shape(g, y):  # PyTorch's x.view(x.size(0), -1)
    n = g.node("Unsqueeze", [g.node("Gather", [g.node("Shape", [y]), g.w(np.array(0))], axis=0), g.w(np.array([0]))])
    return g.node("Reshape", [y, g.node("Concat", [n, g.w(np.array([-1]))], axis=0)])


@pytest.mark.parametrize("to_vector", [_flatten, _reshape_minus_one, _reshape_from_shape])
def test_the_first_fc_after_a_flattened_map_gets_its_rows_permuted(to_vector):
    g = G()
    conv = _conv_then(g)
    w = (g.rng.standard_normal((7, 5 * 9 * 8)) * 0.1).astype(np.float32)  # (M, K): transB
    out = g.node("Gemm", [to_vector(g, conv), g.w(w), g.rand(7)], transB=1, alpha=0.5, beta=2.0)
    imported = check(g.model(out))
    assert kinds(imported) == [Conv2D, ReLU, Dense]  # no Flatten: Dense flattens the NHWC map itself
    dense = layers(imported)[2]
    np.testing.assert_array_equal(dense.params["w"], w.T.reshape(5, 9, 8, 7).transpose(1, 2, 0, 3).reshape(-1, 7))
    assert (dense.alpha, dense.beta) == (0.5, 2.0)


def test_the_batch_comes_from_the_input_never_the_reshape_constant():
    g = G()
    out = g.node("Gemm", [_reshape_minus_one(g, _conv_then(g)), g.rand(360, 3)])
    model = g.model(out)  # declares batch 2; its Reshape says [2, -1]
    x = np.random.default_rng(3).standard_normal((5, 4, 9, 8)).astype(np.float32)
    imported = convert(model)
    y = imported.run(x)
    assert y.shape == (5, 3)
    for i in range(5):  # each sample alone gives the same
        assert np.abs(imported.run(x[i:i + 1]) - y[i:i + 1]).max() <= 1e-5 * np.abs(y).max()


def test_a_transpose_to_nhwc_before_flatten_needs_no_permutation():
    g = G()
    nhwc = g.node("Transpose", [_conv_then(g)], perm=[0, 2, 3, 1])
    w = (g.rng.standard_normal((360, 3)) * 0.1).astype(np.float32)
    imported = check(g.model(g.node("MatMul", [g.node("Flatten", [nhwc]), g.w(w)])))
    np.testing.assert_array_equal(layers(imported)[2].params["w"], w)


def test_reshape_zero_copies_and_minus_one_infers():
    g = G()
    r = g.node("Reshape", [_conv_then(g), g.w(np.array([0, 0, -1]))])  # (N, 5, 72)
    out = g.node("Softmax", [g.node("Reshape", [r, g.w(np.array([-1, 360]))])], axis=1)
    imported = check(g.model(out))
    assert kinds(imported) == [Conv2D, ReLU, Softmax]  # softmax over all of a sample: any order


# -- softmax -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op, axis, opset, cls", [
    ("Softmax", 1, 11, Softmax),  # before 13: the axes from 1 on, as one (all of C, H, W)
    ("Softmax", 1, 13, Softmax),  # 13 on: the channels alone
    ("Softmax", 2, 13, Softmax),
    ("LogSoftmax", -1, 13, LogSoftmax),
    ("LogSoftmax", 2, 11, LogSoftmax),  # before 13: H and W together, per channel
])
def test_softmax_axes(op, axis, opset, cls):
    g = G()
    assert kinds(check(g.model(g.node(op, ["x"], axis=axis), opset=opset))) == [cls]


# -- merges ----------------------------------------------------------------------------------------------------
def test_residual_add_sum_and_concat():
    g = G()
    a = g.node("Conv", ["x", g.rand(4, 4, 3, 3)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b = g.node("Conv", ["x", g.rand(4, 4, 1, 1)], kernel_shape=[1, 1])
    s = g.node("Sum", [a, b, "x"])
    r = g.node("Relu", [g.node("Add", [s, "x"])])
    out = g.node("Concat", [r, a, g.node("MaxPool", [r], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], axis=1)
    imported = check(g.model(out))
    assert kinds(imported).count(Add) == 2 and kinds(imported)[-1] is Concat
    assert imported.net.output_shape() == (9, 8, 12)


def test_squeeze_and_excitation_gate():
    """GAP → 1×1 Conv → Relu → 1×1 Conv → Sigmoid → Mul with the map: the GAP is read as a map."""
    g = G()
    gap = g.node("GlobalAveragePool", ["x"])
    z = g.node("Relu", [g.node("Conv", [gap, g.rand(2, 4, 1, 1), g.rand(2)], kernel_shape=[1, 1])])
    gate = g.node("Sigmoid", [g.node("Conv", [z, g.rand(4, 2, 1, 1), g.rand(4)], kernel_shape=[1, 1])])
    imported = check(g.model(g.node("Mul", ["x", gate])))
    assert kinds(imported) == [AvgPool2D, Conv2D, ReLU, Conv2D, Sigmoid, Mul]


def test_channel_shuffle():
    g = G((2, 6, 5, 4))
    split = g.node("Reshape", ["x", g.w(np.array([1, 3, 2, 5, 4]))])
    swapped = g.node("Transpose", [split], perm=[0, 2, 1, 3, 4])
    out = g.node("Reshape", [swapped, g.w(np.array([1, -1, 5, 4]))])
    imported = check(g.model(out, batch=1))
    assert kinds(imported) == [ChannelShuffle] and layers(imported)[0].groups == 3


# -- constants ----------------------------------------------------------------------------------------------
def test_constants_computed_in_the_graph_are_folded():
    g = G()
    shape = g.node("Constant", [], value=numpy_helper.from_array(np.array([6, 4, 3, 3], np.int64)))
    w = g.node("Mul", [g.node("ConstantOfShape", [shape], value=numpy_helper.from_array(np.array([0.1], np.float32))),
                       g.rand(6, 1, 1, 1)])
    b = g.node("Cast", [g.node("Gather", [g.w(np.arange(10, dtype=np.int64)), g.w(np.arange(6))], axis=0)], to=F)
    out = g.node("Conv", ["x", w, b], kernel_shape=[3, 3])
    imported = check(g.model(out))
    assert kinds(imported) == [Conv2D]
    np.testing.assert_array_equal(layers(imported)[0].params["b"], np.arange(6, dtype=np.float32))


def test_opset_6_broadcast_with_axis():
    """Before opset 7, ``Add(x, b, broadcast=1, axis=1)`` aligns b with axis 1 (onnxruntime no longer
    runs Add-6: the reference is NumPy's)."""
    g = G()
    b = (g.rng.standard_normal(4)).astype(np.float32)
    out = g.node("Add", ["x", g.w(b)], broadcast=1, axis=1)
    imported = convert(g.model(g.node("Relu", [out]), opset=6, ir=3))
    assert kinds(imported) == [ChannelAffine, ReLU]
    x = np.random.default_rng(1).standard_normal(g.shape).astype(np.float32)
    np.testing.assert_allclose(imported.run(x), np.maximum(x + b[:, None, None], 0), rtol=1e-6)


# -- names and the boundary --------------------------------------------------------------------------------
def test_layer_names_are_sanitised_node_names():
    g = G()
    a = g.node("Relu", ["x"], name="block 1/relu:0")
    b = g.node("Relu", [a], name="block 1/relu:0!")  # the same once sanitised
    g.nodes.append(helper.make_node("Relu", [b], ["unnamed:out"]))  # unnamed: its output's name
    d = g.node("Relu", ["unnamed:out"], name="input")  # the net's input is reserved
    imported = convert(g.model(d))
    assert [n.name for n in imported.net.nodes] == ["block_1/relu_0", "block_1/relu_0_2", "unnamed_out", "input_2"]


@pytest.mark.parametrize("name", ["lenet5", "allconvnet", "googlenet", "resnet18"])
def test_zoo_nets_come_back_from_save(name, tmp_path):
    """``save`` then ``load``: the same predictions, parameters and MACs, and the same layer names
    (but for what the exporter leaves out or renames: dropout, the flatten after global pooling)."""
    import convnet
    from convnet import zoo
    from convnet.interop.onnx import save

    net = zoo.get(name).build(rng=np.random.default_rng(0))
    save(net, tmp_path / "m.onnx")
    back = load(tmp_path / "m.onnx")
    x = np.random.default_rng(1).standard_normal((2, *net.input_shape)).astype(np.float32)
    ours, theirs = net.predict(x), back.predict(x)
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 1e-6 * np.abs(ours).max()
    a, b = convnet.summary(net), convnet.summary(back)
    assert (a.total_params, a.total_macs) == (b.total_params, b.total_macs)
    kept = [n.name for n in net.nodes if not isinstance(n.layer, (Dropout, GlobalAvgPool))]
    assert kept == [n.name for n in back.nodes if not isinstance(n.layer, GlobalAvgPool)]


def test_load_returns_a_net_that_takes_nhwc(tmp_path):
    g = G()
    out = g.node("Conv", ["x", g.rand(3, 4, 3, 3)], kernel_shape=[3, 3], strides=[2, 2])
    path = tmp_path / "m.onnx"
    path.write_bytes(g.model(out).SerializeToString())
    net = load(path)
    x = np.random.default_rng(4).standard_normal((2, 4, 9, 8)).astype(np.float32)
    (ref,) = ort_run(g.model(out), {"x": x})
    assert net.input_shape == (9, 8, 4)
    y = net.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    assert np.abs(y.transpose(0, 3, 1, 2) - ref).max() <= 1e-5 * np.abs(ref).max()


def test_symbolic_sizes_need_input_shape():
    g = G()
    model = g.model(g.node("Relu", [g.node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])]))
    for i, p in enumerate(("N", "H", "W")):
        model.graph.input[0].type.tensor_type.shape.dim[[0, 2, 3][i]].dim_param = p
    with pytest.raises(ConfigError, match="input_shape"):
        convert(model)
    imported = convert(model, input_shape=(10, 6, 4))
    assert imported.net.output_shape() == (5, 3, 4)


# -- refusals -----------------------------------------------------------------------------------------------
def _refused(model, *parts):
    with pytest.raises(ConfigError) as info:
        convert(model)
    for part in parts:
        assert part in str(info.value), (part, str(info.value))
    return str(info.value)


def test_an_unsupported_op_names_the_node_the_op_and_the_supported_ops():
    g = G()
    msg = _refused(g.model(g.node("Tanh", ["x"], name="act7")), "'act7'", "Tanh", "supported ops", "Conv")
    assert "<ONNX model g>" in msg


REFUSALS = {
    "LRN of even size": (lambda g: g.node("LRN", ["x"], name="n1", size=4), ("'n1'", "LRN", "`size`=4", "odd")),
    "pooling pads over half the window": (
        lambda g: g.node("MaxPool", ["x"], name="p", kernel_shape=[3, 3], pads=[2, 2, 2, 2]),
        ("'p'", "MaxPool", "`pads`", "half the window")),
    "BatchNormalization in training": (
        lambda g: g.node("BatchNormalization", ["x", *(g.rand(4) for _ in range(4))], name="bn", training_mode=1),
        ("'bn'", "BatchNormalization", "`training_mode`=1", "inference", "opset 14")),
    "Flatten at axis 2": (lambda g: g.node("Flatten", ["x"], name="f", axis=2), ("'f'", "Flatten", "`axis`=2", "1")),
    "Softmax over the batch": (lambda g: g.node("Softmax", ["x"], name="s", axis=0),
                               ("'s'", "Softmax", "`axis`=0", "per-sample")),
    "Gemm transA": (lambda g: g.node("Gemm", [g.node("Flatten", ["x"]), g.rand(2, 288), g.rand(2)], name="fc",
                                     transA=1), ("'fc'", "Gemm", "`transA`=1", "supported")),
    "Reshape that changes the batch": (lambda g: g.node("Reshape", ["x", g.w(np.array([4, -1]))], name="r"),
                                       ("'r'", "Reshape", "batch")),
    "Transpose of a sample's axes": (lambda g: g.node("Transpose", ["x"], name="t", perm=[0, 1, 3, 2]),
                                     ("'t'", "Transpose", "`perm`", "NCHW")),
    "Conv over a 3-D tensor": (lambda g: g.node("Conv", [g.node("Flatten", ["x"]), g.rand(2, 1, 3)], name="c"),
                               ("'c'", "Conv", "2-D")),
    "Dropout in training": (lambda g: g.node("Dropout", ["x", g.w(np.float32(0.5)), g.w(np.array(True))],
                                             name="d"), ("'d'", "Dropout", "`training_mode`", "inference")),
    "an op of another domain": (lambda g: g.nodes.append(helper.make_node("Gelu", ["x"], ["y"], name="ms",
                                                                          domain="com.microsoft")) or "y",
                                ("'ms'", "Gelu", "com.microsoft")),
}


@pytest.mark.parametrize("make, parts", REFUSALS.values(), ids=list(REFUSALS))
def test_refusals_name_node_op_attribute_and_what_is_supported(make, parts):
    g = G()
    model = g.model(make(g), opset=14 if "opset 14" in parts else 13)
    parts = [p for p in parts if p != "opset 14"]
    if any("com.microsoft" in p for p in parts):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _refused(model, *parts)


def test_one_data_input_and_float_only():
    g = G()
    model = g.model(g.node("Add", ["x", "y"]))
    model.graph.input.append(helper.make_tensor_value_info("y", F, [2, 4, 9, 8]))
    _refused(model, "2 graph inputs", "one input")
    g = G()
    model = g.model(g.node("Relu", ["x"]))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT32
    _refused(model, "'x'", "float32")


def test_several_outputs_need_a_choice():
    g = G()
    a = g.node("Relu", ["x"])
    model = g.model(g.node("Sigmoid", [a]))
    model.graph.output.append(helper.make_tensor_value_info(a, F, None))
    _refused(model, "2 outputs", "output=")
    assert kinds(convert(model, output=a)) == [ReLU]


def test_an_opset_outside_the_range_is_refused():
    g = G()
    _refused(g.model(g.node("Relu", ["x"]), opset=5, ir=3), "opset 5", "6 to 25")


def test_a_flattened_map_concatenated_with_another_is_refused():
    """Their ONNX order is CHW, convnet's HWC: the concatenation would not line up."""
    g = G()
    f1, f2 = g.node("Flatten", [_conv_then(g)]), g.node("Flatten", ["x"])
    _refused(g.model(g.node("Concat", [f1, f2], axis=1)), "Concat", "order")


def test_flatten_layer_where_the_vector_itself_is_needed():
    g = G()
    out = g.node("LogSoftmax", [g.node("Flatten", [_conv_then(g)])], axis=-1, name="ls")
    imported = check(g.model(out))
    assert kinds(imported) == [Conv2D, ReLU, LogSoftmax]  # all of a sample: the map itself, over (1, 2, 3)
    assert imported.output.layout == "HWC_FLAT"
    g = G()
    flat = g.node("Flatten", [_conv_then(g)])
    out = g.node("Concat", [flat, flat], axis=1)
    with pytest.raises(ConfigError):
        convert(g.model(out))
    assert Flatten  # the layer exists for the cases that need it
