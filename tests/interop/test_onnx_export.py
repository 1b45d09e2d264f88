"""Issue 16, item 2: ``convnet.interop.onnx.save`` — every zoo net, every exportable layer and a
trained checkpoint, run in ONNX Runtime, equal convnet's forward pass (float32, max |diff| ≤
1e-4·max|ref|), with random weights and BatchNorm statistics; the checker passes; errors name
what is wrong."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import convnet
from convnet import zoo
from convnet.errors import ConfigError, PathError
from convnet.interop.onnx import save
from convnet.interop.onnx.export import BATCH, EXPORTERS, MIN_OPSET, to_model
from convnet.layers import (
    LAYERS,
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
    FractionalMaxPool2D,
    GlobalAvgPool,
    GlobalLpPool,
    GlobalMaxPool,
    Identity,
    L2Pool2D,
    LeakyReLU,
    LocallyConnected2D,
    LogSoftmax,
    LpPool2D,
    MaxPool2D,
    Mul,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
)
from convnet.layers.base import Layer
from convnet.net import Net

pytestmark = pytest.mark.oracle


# -- helpers ---------------------------------------------------------------------------------
def randomize(net: Net, rng) -> Net:
    """Random biases, BN affine parameters and running statistics (the weights are He-random)."""
    for layer in net.layers:
        for key, v in layer.params.items():
            if key in ("gamma", "scale"):
                layer.params[key] = rng.uniform(0.5, 1.5, v.shape).astype(v.dtype)
            elif key in ("b", "beta", "shift"):
                layer.params[key] = rng.normal(0, 0.2, v.shape).astype(v.dtype)
        for key, v in layer.state.items():
            low_high = (-0.2, 0.2) if key == "running_mean" else (0.5, 1.5)
            layer.state[key] = rng.uniform(*low_high, v.shape).astype(v.dtype)
    return net


def session(ort, model):
    data = model if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    return ort.InferenceSession(data if isinstance(data, bytes) else os.fspath(data),
                                providers=["CPUExecutionProvider"])


def run(sess, x_nhwc):
    """Run the ONNX model on an NHWC batch; a map output comes back NHWC."""
    x = x_nhwc.transpose(0, 3, 1, 2) if x_nhwc.ndim == 4 else x_nhwc
    (y,) = sess.run(None, {"input": np.ascontiguousarray(x)})
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def assert_exports(net: Net, rng, onnx, ort, *, batch: int = 3, opset: int = 17):
    """Export ``net`` (built), check the model, run it, compare with ``net.predict``."""
    model = to_model(net, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
    ref = net.predict(x)
    got = run(session(ort, model), x)
    assert got.shape == ref.shape
    err = np.abs(got - ref).max()
    assert err <= 1e-4 * np.abs(ref).max(), f"max |diff| {err:.3g} vs max |ref| {np.abs(ref).max():.3g}"
    return model


# -- every zoo net ---------------------------------------------------------------------------
#: small versions: the width multiplier, and inputs that keep the geometry interesting
#: (GoogLeNet's ceil pools meet odd maps at 64×64; VGG's first FC reads a 2×2 map at 64×64)
SMALL = {
    "alexnet": dict(width=1 / 16),
    "zfnet": dict(width=1 / 16),
    "googlenet": dict(width=1 / 16, input_shape=(64, 64, 3)),
    **{n: dict(width=1 / 16, input_shape=(64, 64, 3)) for n in zoo.names() if n.startswith("vgg")},
    **{f"resnet{d}": dict(width=1 / 16, input_shape=(64, 64, 3)) for d in (18, 34, 50, 101, 152)},
}


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_net_runs_in_onnxruntime_as_in_convnet(name, rng, onnx, ort):
    net = zoo.get(name, **SMALL.get(name, dict(width=1 / 8)))
    randomize(net.build(rng=rng), rng)
    assert_exports(net, rng, onnx, ort)


# -- every exportable layer ------------------------------------------------------------------
def chain(input_shape, *layers) -> Net:
    return Net.sequential(layers, input_shape=input_shape)


def branches() -> Net:
    """Add of three inputs, Concat of maps and of vectors."""
    net = Net(input_shape=(6, 7, 4))
    a = net.add(Conv2D(5, 3, padding=1), inputs="input")
    b = net.add(Conv2D(5, 1), inputs="input")
    c = net.add(Conv2D(5, (1, 3), padding=((0, 0), (1, 1))), inputs="input")
    s = net.add(Add(), inputs=[a, b, c])
    m = net.add(Concat(), inputs=[s, "input", a])
    g = net.add(GlobalAvgPool(), inputs=m)
    f = net.add(Dense(6), inputs=m)
    net.add(Concat(), inputs=[g, f])
    return net


CASES = {
    "conv same, non-square, dilated, grouped, crop": lambda: chain(
        (11, 10, 4), Conv2D(6, 2, padding="same"),
        Conv2D(6, (3, 2), stride=(2, 1), dilation=(2, 1), groups=2, fit="crop"),
        Conv2D(4, 3, stride=2, fit="pad", use_bias=False)),
    "pattern: conv pool fc": lambda: convnet.parse(
        "INPUT[9x11x3] -> CONV3-8/S2/CEIL -> RELU -> POOL3/S2/P1/CEIL -> CONV1-4/NOBIAS -> FC-5"),
    "max pool padded, fit pad": lambda: chain((9, 8, 3), MaxPool2D(3, stride=2, padding=1, fit="pad"),
                                              MaxPool2D((2, 3), stride=(1, 2), fit="crop")),
    "pools where ceil_mode would add a window in the padding": lambda: _ceil_window_in_padding(),
    "avg pool, padding counted, fit pad": lambda: chain((9, 8, 3), AvgPool2D(3, stride=2, padding=1, fit="pad")),
    "avg pool, padding not counted, fit pad": lambda: chain(
        (9, 8, 3), AvgPool2D(3, stride=2, padding=1, fit="pad", count_include_pad=False)),
    "avg pool, fit pad, no padding": lambda: chain((7, 7, 2), AvgPool2D(2, fit="pad")),
    "avg pool, padding, even": lambda: chain((8, 8, 2), AvgPool2D(3, stride=1, padding=1),
                                             AvgPool2D(3, stride=1, padding=1, count_include_pad=False)),
    "l2 pool padded, fit pad": lambda: chain(
        (9, 8, 3), L2Pool2D(3, stride=2, padding=1, fit="pad"), L2Pool2D(2, fit="crop")),
    "lrn odd and even sizes": lambda: chain(
        (5, 4, 7), LRN(), LRN(size=3, alpha=0.1, beta=0.6, k=1.0), LRN(size=2, alpha=0.3, beta=0.9, k=1.5),
        LRN(size=4, alpha=0.2, beta=0.75, k=0.8), LRN(size=8, alpha=0.5, beta=0.5, k=1.0)),
    "bn on maps and vectors, leaky relu": lambda: chain(
        (6, 6, 3), Conv2D(4, 3), BatchNorm(eps=1e-3), LeakyReLU(0.2), Dense(8), BatchNorm(), LeakyReLU(), Dense(3)),
    "flatten then fc; dropout in the middle": lambda: chain(
        (4, 5, 3), Conv2D(6, 3, padding=1), Dropout(0.3), Flatten(), Dense(7), ReLU(), Dense(4)),
    "flatten as the output": lambda: chain((4, 5, 3), Conv2D(6, 3, padding=1), Flatten()),
    "dropout as the output": lambda: chain((4, 5, 3), Dense(6), Dropout(0.5)),
    "a map as the output": lambda: chain((4, 5, 3), Conv2D(6, 3, padding=1), ReLU()),
    "gap as the output": lambda: chain((5, 5, 3), Conv2D(6, 3), GlobalAvgPool()),
    "vector input": lambda: chain((12,), Dense(8), ReLU(), Dense(3)),
    "locally connected": lambda: chain(
        (7, 6, 3), LocallyConnected2D(4, 3, stride=(2, 1), padding=1, fit="crop"),
        LocallyConnected2D(2, (2, 1), dilation=(1, 1), use_bias=False), Dense(3)),
    "fractional max pool, fixed": lambda: chain((9, 10, 3), FractionalMaxPool2D(output_size=(6, 7))),
    "fractional max pool, averaged grids": lambda: chain(
        (9, 10, 3), FractionalMaxPool2D(ratio=0.7, test_mode="average", test_grids=3, seed=4)),
    "add of three, concat of maps and vectors": branches,
    "dilated pools": lambda: chain(
        (11, 10, 3), MaxPool2D(3, stride=2, padding=1, dilation=2, fit="pad"), LpPool2D(2, p=3, dilation=(1, 2),
                                                                                        fit="crop")),
    "lp pools, integer and real p": lambda: chain(
        (9, 8, 3), LpPool2D(3, p=3, stride=2, padding=1, fit="pad"), LpPool2D(2, p=1.5, fit="crop")),
    "global max and lp pools": lambda: _gathered((5, 6, 4), GlobalMaxPool(), GlobalLpPool(), GlobalLpPool(p=3),
                                                 GlobalLpPool(p=2.5)),
    "conv transpose": lambda: chain(
        (5, 4, 4), ConvTranspose2D(6, 4, stride=2, padding=1), ConvTranspose2D(4, (3, 2), stride=(2, 1),
                                                                                padding=((1, 0), (0, 1)),
                                                                                output_padding=(1, 0), groups=2),
        ConvTranspose2D(3, 3, dilation=2, use_bias=False)),
    "sigmoid, clip, relu6, identity": lambda: chain(
        (4, 4, 3), Conv2D(5, 3, padding=1), Sigmoid(), Conv2D(5, 1), Clip(-0.3, 0.4), Clip(max=0.2), Clip(min=-0.1),
        Conv2D(4, 1), ReLU6(), Identity()),
    "softmax and log-softmax over each axis": lambda: chain(
        (4, 5, 3), Conv2D(6, 3, padding=1), Softmax(), LogSoftmax(axis=1), Softmax(axis=-2), LogSoftmax(axis=(1, 2)),
        Softmax(axis=(-3, -1)), Dense(4), LogSoftmax()),
    "channel affine and shuffle on maps and vectors": lambda: chain(
        (4, 5, 6), Conv2D(6, 1), ChannelAffine(), ChannelShuffle(3), Dense(8), ChannelAffine(), ChannelShuffle(2),
        Dense(3)),
    "dense alpha and beta": lambda: chain((3, 4, 2), Dense(5, alpha=0.5, beta=2.0), Dense(3, alpha=1.5)),
    "mul gates; concat on height and width": lambda: _gates(),
}


#: 8 rows: fit="pad" adds one (ceil_mode can say so); 5 columns: the window a ceil would add
#: starts in the right padding, which convnet does not add and ONNX's ceil_mode would
CEIL_IN_PADDING = dict(pool_size=3, stride=(2, 3), padding=1, fit="pad")


def _ceil_window_in_padding() -> Net:
    net = Net(input_shape=(8, 5, 3))
    outs = [net.add(pool(**CEIL_IN_PADDING), inputs="input") for pool in (MaxPool2D, AvgPool2D, L2Pool2D)]
    outs.append(net.add(AvgPool2D(count_include_pad=False, **CEIL_IN_PADDING), inputs="input"))
    net.add(Concat(), inputs=outs)
    return net


def _gates() -> Net:
    """A squeeze-and-excitation gate (map · per-channel vector), maps times maps, three inputs;
    concatenation along the height and the width."""
    net = Net(input_shape=(5, 6, 4))
    x = net.add(Conv2D(4, 3, padding=1), inputs="input")
    net.add(GlobalAvgPool(), inputs=x)
    net.add(Dense(2))
    net.add(ReLU())
    net.add(Dense(4))
    gate = net.add(Sigmoid())
    se = net.add(Mul(), inputs=[x, gate])
    sq = net.add(Mul(), inputs=[gate, se, "input"])
    h = net.add(Concat(axis=1), inputs=[sq, x])
    return net.add(Concat(axis=-2), inputs=[h, h]) and net


def _gathered(shape, *globals_):
    """Each global pool on the same map, concatenated."""
    net = Net(input_shape=shape)
    x = net.add(Conv2D(shape[2], 3, padding=1), inputs="input")
    outs = [net.add(layer, inputs=x) for layer in globals_]
    net.add(Concat(), inputs=outs)
    return net


@pytest.mark.parametrize("case", CASES)
def test_each_exportable_layer_runs_in_onnxruntime_as_in_convnet(case, rng, onnx, ort):
    net = randomize(CASES[case]().build(rng=rng), rng)
    assert_exports(net, rng, onnx, ort)


def test_the_cases_use_every_exportable_layer():
    used = {type(layer) for make in CASES.values() for layer in make().layers}
    from convnet.zoo.blocks import PadShortcut  # exported by resnet20_cifar in the zoo test

    assert set(EXPORTERS) - used == {PadShortcut}


def test_every_registered_layer_has_an_exporter():
    """A layer added to convnet.layers.LAYERS needs its line in EXPORTERS (or a decision not to)."""
    assert [cls.__name__ for cls in LAYERS if cls not in EXPORTERS] == []


def test_fit_pad_is_ceil_mode_where_onnx_gives_the_same_size():
    def attrs(net):
        from onnx import helper

        return {n.name: {a.name: helper.get_attribute_value(a) for a in n.attribute}
                for n in to_model(net, opset=18).graph.node if "Pool" in n.op_type}

    ceil = attrs(chain((9, 8, 3), MaxPool2D(3, stride=2, padding=1, fit="pad"), L2Pool2D(2, fit="pad")).build())
    assert ceil["pool1"]["ceil_mode"] == 1 and ceil["pool1"]["pads"] == [1, 1, 1, 1]
    assert ceil["pool2"]["ceil_mode"] == 1 and ceil["pool2"]["pads"] == [0, 0, 0, 0]
    written = attrs(chain((8, 5, 3), MaxPool2D(**CEIL_IN_PADDING)).build())
    assert written["pool1"]["ceil_mode"] == 0 and written["pool1"]["pads"] == [1, 1, 2, 1]


def test_the_first_dense_after_a_map_reads_rows_in_onnx_order(onnx):
    """The Dense weights in the model are convnet's rows permuted from (h, w, c) to (c, h, w)."""
    from onnx import numpy_helper

    net = chain((2, 3, 4), Dense(5)).build()
    w = net["fc1"].params["w"]
    weights = {t.name: numpy_helper.to_array(t) for t in to_model(net).graph.initializer}
    np.testing.assert_array_equal(weights["fc1.w"], w.reshape(2, 3, 4, 5).transpose(2, 0, 1, 3).reshape(24, 5))


# -- the model's interface -----------------------------------------------------------------
def test_symbolic_batch_runs_at_batch_1_and_3(rng, onnx, ort, tmp_path):
    net = randomize(zoo.get("resnet20_cifar", width=0.25).build(rng=rng), rng)
    path = save(net, tmp_path / "r20.onnx")
    model = onnx.load(path)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "output"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == [BATCH, 3, 32, 32]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == [BATCH, 10]
    sess = session(ort, path)
    for batch in (1, 3):
        x = rng.standard_normal((batch, 32, 32, 3)).astype(np.float32)
        ref = net.predict(x)
        np.testing.assert_allclose(run(sess, x), ref, atol=1e-4 * np.abs(ref).max(), rtol=0)


@pytest.mark.parametrize("opset", [MIN_OPSET, 17, None])
def test_opsets(opset, rng, onnx, ort):
    opset = opset or onnx.defs.onnx_opset_version()
    net = randomize(CASES["add of three, concat of maps and vectors"]().build(rng=rng), rng)
    model = assert_exports(net, rng, onnx, ort, opset=opset)
    assert model.opset_import[0].version == opset


def test_a_float64_net_is_written_in_float32(rng, onnx, ort):
    net = randomize(chain((5, 5, 2), Conv2D(3, 3, dtype="float64"), BatchNorm(dtype="float64"), ReLU(),
                          Dense(4, dtype="float64")).build(rng=rng), rng)
    x = rng.standard_normal((2, 5, 5, 2))
    ref = net.predict(x)
    got = run(session(ort, to_model(net)), x.astype(np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-4 * np.abs(ref).max(), rtol=0)


def test_a_dilated_average_pool_needs_opset_19(rng, onnx, ort):
    net = randomize(chain((9, 8, 3), AvgPool2D(2, stride=2, padding=1, dilation=2, fit="pad")).build(rng=rng), rng)
    with pytest.raises(ConfigError, match="AveragePool needs opset 19"):
        to_model(net, opset=18)
    assert_exports(net, rng, onnx, ort, opset=19)


def test_weights_are_named_as_convnet_names_them(onnx):
    net = zoo.get("resnet18", width=1 / 16, input_shape=(32, 32, 3)).build()
    names = {t.name for t in to_model(net).graph.initializer}
    expected = {n for n, _, _ in net.named_parameters(trainable_only=False)} | {n for n, _ in net.named_state()}
    assert expected <= names


def test_bn_is_not_fused(onnx):
    ops = [n.op_type for n in to_model(zoo.get("resnet18", width=1 / 16, input_shape=(32, 32, 3)).build()).graph.node]
    assert ops.count("BatchNormalization") == 20 and "Dropout" not in ops


def test_a_trained_checkpoint_round_trips(tmp_path, onnx, ort):
    """Train a few steps (BN statistics move), load the checkpoint back, export, compare."""
    from convnet.train.config import TrainConfig
    from convnet.train.run import TrainedNet, train

    arch = "INPUT[8x8x1] -> CONV3-8 -> BN -> RELU -> POOL2 -> DROPOUT-0.2 -> FC-16 -> RELU -> FC-10"
    train(TrainConfig(arch=arch, epochs=1, batch=32, max_steps=5), tmp_path / "run", quiet=True)
    trained = TrainedNet(tmp_path / "run")
    assert not np.allclose(trained.net["bn1"].state["running_mean"], 0)
    path = save(trained.net, tmp_path / "trained.onnx")
    rng = np.random.default_rng(0)
    x = trained.prepare(rng.uniform(0, 1, (5, 8, 8, 1)))
    ref = trained.net.predict(x)
    np.testing.assert_allclose(run(session(ort, path), x), ref, atol=1e-4 * np.abs(ref).max(), rtol=0)


# -- writing the file ------------------------------------------------------------------------
def test_the_file_is_written_atomically_and_checked(tmp_path, onnx, monkeypatch):
    net = chain((4, 4, 2), Conv2D(3, 3), ReLU()).build()
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    assert save(net, path) == path
    onnx.checker.check_model(onnx.load(path), full_check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left

    class Square(Layer):
        kind = "SQUARE"

        def forward(self, x, *, train=False, keep_cache=True):
            return x * x

    bad = chain((4, 4, 2), Conv2D(3, 3), Square(name="sq")).build()
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"'sq'.*Square"):
        save(bad, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_path_that_cannot_be_written_is_a_path_error(tmp_path):
    net = chain((4, 4, 2), Conv2D(3, 3)).build()
    with pytest.raises(PathError, match="is a folder"):
        save(net, tmp_path)
    with pytest.raises(PathError, match="does not exist"):
        save(net, tmp_path / "missing" / "m.onnx")


# -- errors ----------------------------------------------------------------------------------
def test_an_unsupported_layer_is_a_config_error_naming_it():
    class Square(Layer):
        kind = "SQUARE"

    net = chain((4, 4, 2), Conv2D(3, 3), Square(name="square1"), ReLU()).build()
    with pytest.raises(ConfigError, match=r"node 'square1'.*layer Square has no ONNX mapping.*Conv2D"):
        to_model(net)


def test_a_subclass_is_not_taken_for_its_base():
    class ScaledReLU(ReLU):
        def forward(self, x, **kwargs):
            return 2 * super().forward(x, **kwargs)

    with pytest.raises(ConfigError, match="ScaledReLU"):
        to_model(chain((4,), ScaledReLU(), Dense(2)).build())


def test_without_onnx_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install convnet\[onnx\]"):
        to_model(zoo.get("lenet5").build())


def test_an_unbuilt_net_and_a_bad_opset_are_config_errors():
    with pytest.raises(ConfigError, match="not built"):
        to_model(zoo.get("lenet5"))
    net = zoo.get("lenet5").build()
    for opset in (12, 10_000, "17", True):
        with pytest.raises(ConfigError, match="opset"):
            to_model(net, opset=opset)


def test_nodes_that_do_not_reach_the_output_are_left_out(rng, onnx, ort):
    net = chain((5, 5, 2), Conv2D(3, 3, name="kept"), ReLU(name="relu"), Conv2D(4, 1, name="side")).build(rng=rng)
    net.output = "relu"  # a net cut short after it was built
    model = to_model(net)
    assert "side" not in {n.name for n in model.graph.node}
    assert_exports(net, rng, onnx, ort)
