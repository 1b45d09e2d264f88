"""The memory model: the notes' three sources, predicted against tracemalloc, and batch fitting."""
import tracemalloc

import numpy as np
import pytest

from convnet import zoo
from convnet.analysis import summarize
from convnet.analysis.memory import (
    OPTIMIZER_SLOTS,
    MemoryModel,
    estimate,
    format_bytes,
    parse_bytes,
)
from convnet.errors import BudgetError, ConfigError
from convnet.ops import scratch
from convnet.pattern import parse


def measure_step(net, batch, *, train=True, seed=0):
    """Peak bytes allocated by one step after a warm-up (parameters and old gradients already exist)."""
    rng = np.random.default_rng(seed)
    net.build(rng=rng)
    x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
    net.backward(np.ones_like(net.forward(x, train=True)))  # compiles numba kernels untraced (fast)
    net.predict(x)  # and the inference ones (switch-free max pooling...): a fresh clone has no numba cache
    tracemalloc.start()
    try:
        y = net.forward(x, train=True)
        net.backward(np.ones_like(y))
        dloss = rng.standard_normal(y.shape).astype(np.float32)
        del y
        scratch.release()  # the step grows the ops' scratch buffers again, as the model counts them
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        if train:
            y = net.forward(x, train=True)
            dx = net.backward(dloss)
            del dx, y
        else:
            y = net.predict(x)
            del y
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def plain_net():
    net = parse("INPUT[32x32x3] -> [[CONV3-16 -> RELU]*2 -> POOL2]*2 -> FC-10")
    for layer in net.layers:  # a small workspace: the cached activations dominate the peak
        if hasattr(layer, "workspace_bytes"):
            layer.workspace_bytes = 1 << 20
    return net


def small_maps_net():
    # 2×2 maps at the end: their CONV layers run the smallmap algorithm
    return parse("INPUT[8x8x16] -> [[CONV3-64 -> RELU]*2 -> POOL2]*2 -> [CONV3-128 -> RELU]*2 -> FC-10")


def wide_winograd_net():
    # wide layers whose transformed filters (α²·C·K: 9.4 MiB each here) outweigh the activations; the
    # pool holds the later layer's dU while the earlier layer's dx makes its rotated filter
    net = parse("INPUT[12x12x256] -> CONV3-256 -> CONV3-256 -> RELU -> CONV3-512 -> GAP -> FC-10")
    algos = iter(["winograd4", "winograd4", "winograd2"])
    for layer in net.layers:
        if hasattr(layer, "algorithm"):
            layer.algorithm = next(algos)
    return net


def interop_net():
    # the layers issue 16 added: a transposed convolution, dilated and Lp pooling, softmax over the
    # channels, global max pooling, and the pointwise ones
    return parse("INPUT[16x16x16] -> CONV3-16 -> RELU6 -> DECONV4-16/S2/P1 -> SIGMOID -> POOL3/S2/P2/D2/FLOOR -> "
                 "SHUFFLE-4 -> AFFINE -> SOFTMAX-C -> LPPOOL2-3 -> GMP -> FC-10")


NETS = {
    "plain": (plain_net, 16),
    "interop": (interop_net, 16),
    "small_maps": (small_maps_net, 32),
    "wide_winograd": (wide_winograd_net, 1),
    "resnet20": (lambda: zoo.get("resnet20_cifar", width=0.5), 16),
    "googlenet": (lambda: zoo.get("googlenet", input_shape=(64, 64, 3), width=0.25, num_classes=10), 4),
}


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("train", [True, False], ids=["train", "predict"])
def test_predicted_activation_peak_within_20_percent_of_tracemalloc(name, train):
    make, batch = NETS[name]
    net = make()
    measured = measure_step(net, batch, train=train)
    est = MemoryModel(net, train=train).estimate(batch)
    # weight transforms a layer keeps (prepacked, CONVNET_PREPACK=1) were made by the warm-up's inference
    # and live outside the measured step; a per-call one is among the step's temporaries
    predicted = est.activations_peak
    assert 0.8 * measured <= predicted <= 1.2 * measured, (format_bytes(predicted), format_bytes(measured))


def test_training_keeps_more_than_inference():
    net = zoo.get("vgg16")
    train = estimate(net, batch=8)
    infer = estimate(net, batch=8, train=False)
    assert train.activations_peak > 1.5 * infer.activations_peak
    # inference frees each activation early: far less than all outputs together
    assert infer.activations_peak < 0.7 * infer.activations_forward
    # "layer outputs, summed" is the summary table's total: the notes' 15,237,608 values per VGG16
    # image (it used to count the in-place RELU rows too: 28.8M, which no forward pass holds)
    assert estimate(net).activations_forward == 4 * summarize(net).total_stored == 4 * 15_237_608
    assert estimate(net, batch=8).activations_forward == summarize(net, batch=8).total_stored_bytes


#: layers whose cache references their input for backward (CONV, FC, BN, LRN: architecture.md),
#: and the one that references its output (RELU) — the arrays a training step cannot free
_KEEP_INPUT, _KEEP_OUTPUT = ("CONV", "FC", "BN", "LRN"), ("RELU",)


def _owners(net):
    """Each node's name -> the node whose array holds its output (in-place rows and views resolved)."""
    from convnet.analysis.memory import output_storage

    storage = output_storage(net)
    writes_into = net.ownership().writes_into
    owner = {"input": "input"}
    for node in net.nodes:
        into = writes_into.get(node.name)
        owner[node.name] = node.name if storage[node.name] == "new" else owner[into or node.inputs[0]]
    return owner


@pytest.mark.parametrize("name", zoo.names())
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_peak_holds_what_must_be_live(name, batch):
    """The report's lines cannot contradict each other: the peak of a training step is at least
    the arrays backward needs plus the loss gradient; inference's at least one layer's inputs and
    output; a step at least inference; and "layer outputs, summed" is the table's total."""
    net = zoo.get(name)
    shapes, owner = net.shapes(), _owners(net)
    nbytes = {n: 0 if n == "input" else batch * int(np.prod(shapes[n])) * 4 for n in shapes}  # input: "data"
    kept = set()
    for node in net.nodes:
        if node.layer.kind in _KEEP_INPUT:
            kept.update(owner[i] for i in node.inputs)
        if node.layer.kind in _KEEP_OUTPUT:
            kept.add(owner[node.name])
    train, infer = estimate(net, batch=batch), estimate(net, batch=batch, train=False)
    assert train.activations_peak >= sum(nbytes[k] for k in kept) + nbytes[net.output_name]
    one_layer = max(nbytes[n.name] * (owner[n.name] == n.name) + sum(nbytes[k] for k in {owner[i] for i in n.inputs})
                    for n in net.nodes)
    assert infer.activations_peak >= one_layer
    assert train.activations_peak >= infer.activations_peak
    assert train.activations_forward == infer.activations_forward == summarize(net, batch=batch).total_stored_bytes
    assert train.total == train.activations_peak + train.parameters + train.gradients + train.data


def test_report_names_what_each_line_counts():
    text = estimate(zoo.get("vgg16"), batch=64).report().splitlines()
    assert text[0] == "Memory at batch 64 (float32, training step, optimizer sgd):"
    assert text[1].split()[:4] == ["layer", "outputs,", "summed", "3.6"] and "the table's total" in text[1]
    assert text[2].split()[:5] == ["peak", "of", "the", "step", "4.1"] and "kept for backward" in text[2]
    assert text[-1].split()[0] == "total" and "peak + parameters + gradients" in text[-1]
    infer = estimate(zoo.get("vgg16"), batch=64, train=False).report()
    assert "peak of inference" in infer and "outputs not yet consumed" in infer and "gradients" not in infer


def test_parameter_memory_multipliers():
    net = zoo.get("vgg16")
    p = 138_357_544 * 4
    for opt, slots in OPTIMIZER_SLOTS.items():
        e = estimate(net, optimizer=opt)
        assert (e.parameters, e.gradients, e.optimizer_state) == (p, p, slots * p)
    assert OPTIMIZER_SLOTS == {"sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}
    inference = estimate(net, train=False)
    assert inference.gradients == inference.optimizer_state == 0
    e64 = estimate(net, dtype="float64")
    assert e64.parameters == 2 * p and e64.activations_forward == 2 * estimate(net).activations_forward


def test_data_batch_and_total():
    net = zoo.get("lenet5")
    e = estimate(net, batch=10)
    assert e.data == 10 * 32 * 32 * 1 * 4 + 10 * 8  # images and int64 labels
    assert e.total == e.activations_peak + e.parameters + e.gradients + e.optimizer_state + e.data
    assert "total" in e.report() and e.as_dict()["total"] == e.total


def test_max_batch_runs_within_budget():
    net = plain_net()
    budget = 12 * 2**20
    model = MemoryModel(net, optimizer="sgd")
    b = model.max_batch(budget)
    assert b >= 1
    assert model.fits(b, budget) and not model.fits(b + 1, budget)
    # a training step at that batch runs, and what it allocates stays within the budget
    params = 2 * model.estimate(b).parameters
    measured = measure_step(net, b) + params + model.estimate(b).data
    assert measured <= budget * 1.05


def test_max_batch_raises_when_nothing_fits():
    with pytest.raises(BudgetError, match="Even a batch of 1"):
        MemoryModel(zoo.get("vgg16")).max_batch("100MB")


def test_max_batch_monotone_in_budget():
    model = MemoryModel(zoo.get("resnet18"), optimizer="adam")
    assert model.max_batch("4GB") < model.max_batch("12GB")


@pytest.mark.parametrize("text, value", [("12GB", 12 * 2**30), ("512MB", 512 * 2**20), ("1.5 GiB", int(1.5 * 2**30)),
                                         ("1024", 1024), ("64k", 65536), (4096, 4096)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("bad", ["", "12XB", "-1GB", "0", True, None, "GB"])
def test_parse_bytes_errors(bad):
    with pytest.raises(ConfigError, match="budget"):
        parse_bytes(bad)


def test_argument_errors():
    with pytest.raises(ConfigError, match="optimizer"):
        MemoryModel(zoo.get("lenet5"), optimizer="lbfgs")
    with pytest.raises(ConfigError, match="batch"):
        MemoryModel(zoo.get("lenet5")).estimate(0)


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(93 * 2**20) == "93.0 MiB"
