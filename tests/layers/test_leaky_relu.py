"""LeakyReLU, the layer added to show what a new layer takes (issue 15): the op pair against the
three oracles (the float64 loop, centred differences with a random dy, PyTorch), in place, the
layer's spelling in the pattern language, its cost and footprint, and a net run in place."""
import numpy as np
import pytest

from convnet.analysis import summarize
from convnet.analysis.memory import MemoryModel, output_storage
from convnet.errors import ConfigError, PatternSyntaxError
from convnet.layers import LAYERS, Conv2D, LeakyReLU
from convnet.net import Net
from convnet.ops import reference as ref
from convnet.ops.activations import leaky_relu, leaky_relu_backward, leaky_relu_forward
from convnet.pattern import parse, to_pattern
from oracle import assert_close, away_from_zero, gradcheck, n, t

DTYPES = [np.float64, np.float32]
DT_IDS = ["f64", "f32"]


# -- the op pair ------------------------------------------------------------------------------------
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, 1.5])
def test_forward_matches_the_reference_loop(slope, rng):
    x = rng.standard_normal((2, 3, 4, 2))
    y, cache = leaky_relu_forward(x, negative_slope=slope)
    assert_close(y, ref.leaky_relu(x, slope))
    np.testing.assert_array_equal(leaky_relu(x, negative_slope=slope), y)
    assert y is not x and cache.y is y


@pytest.mark.parametrize("slope", [0.01, 0.3])
def test_backward_matches_finite_differences(slope, rng):
    def f(x):
        return leaky_relu_forward(x, negative_slope=slope)[0]

    def vjp(dy, x):
        return {"x": leaky_relu_backward(dy, leaky_relu_forward(x, negative_slope=slope)[1])}

    gradcheck(f, vjp, {"x": away_from_zero(rng, (2, 3, 2, 2))}, rng=rng, mode="full")
    gradcheck(f, vjp, {"x": away_from_zero(rng, (6, 5, 4, 3))}, rng=rng, mode="projection")


def test_gradient_at_the_kink_is_the_slope():
    x = np.array([[-1.0, 0.0, 2.0]])
    _, cache = leaky_relu_forward(x, negative_slope=0.25)
    np.testing.assert_array_equal(leaky_relu_backward(np.array([[4.0, 8.0, 7.0]]), cache), [[1.0, 2.0, 7.0]])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_in_place_gives_the_same_bits(dtype, rng):
    x = rng.standard_normal((3, 4, 5, 2)).astype(dtype)
    x.reshape(-1)[:4] = [0.0, -0.0, 0.0, -0.0]
    y, cache = leaky_relu_forward(x, negative_slope=0.1)
    xi = x.copy()
    yi, cache_i = leaky_relu_forward(xi, negative_slope=0.1, inplace=True)
    assert yi is xi and yi.tobytes() == y.tobytes()
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = leaky_relu_backward(dy, cache)
    dyi = dy.copy()
    dxi = leaky_relu_backward(dyi, cache_i, inplace=True)
    assert dxi is dyi and dxi.tobytes() == dx.tobytes()
    assert dy.tobytes() != dx.tobytes()  # the out-of-place backward left dy alone


@pytest.mark.parametrize("slope", [-0.1, float("nan"), float("inf"), True, "0.1"])
def test_a_negative_or_non_finite_slope_is_refused(slope):
    with pytest.raises(ConfigError, match="negative_slope"):
        LeakyReLU(slope)
    with pytest.raises(ConfigError, match="negative_slope"):
        leaky_relu(np.ones((1, 2)), negative_slope=slope)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_matches_torch(dtype, slope, rng, torch):
    x = away_from_zero(rng, (2, 3, 3, 4), dtype=dtype)
    x.reshape(-1)[:3] = 0  # the kink: both give the slope there
    y, cache = leaky_relu_forward(x, negative_slope=slope)
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = t(torch, x, grad=True)
    yt = torch.nn.functional.leaky_relu(xt, negative_slope=slope)
    yt.backward(t(torch, dy))
    assert_close(y, n(yt), dtype=dtype)
    assert_close(leaky_relu_backward(dy, cache), n(xt.grad), dtype=dtype)


@pytest.mark.oracle
def test_layer_matches_torch_module(rng, torch):
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    layer, module = LeakyReLU(), torch.nn.LeakyReLU()  # both default to 0.01
    assert layer.negative_slope == module.negative_slope
    assert_close(layer.forward(x), n(module(t(torch, x))))


# -- the layer: what it says about itself ------------------------------------------------------------
def test_the_layer_is_registered_and_describes_itself():
    assert LeakyReLU in LAYERS
    layer = LeakyReLU(0.2)
    assert (layer.kind, layer.name_prefix, layer.inplace, layer.grad_private, layer.pointwise) == (
        "LRELU", "lrelu", True, True, True)
    cost = layer.cost([(4, 4, 3)], (4, 4, 3))
    assert (cost.params, cost.macs, cost.flops_forward, cost.flops_backward, cost.window) == (0, 0, 96, 96, None)
    fp = layer.footprint([(4, 4, 3)], (4, 4, 3), batch=2, itemsize=4, train=True)
    assert fp.keeps_output and not fp.keeps_input and fp.cache_bytes == 0


def test_pattern_spelling_parses_and_writes_back():
    net = parse("INPUT[8x8x3] -> CONV3-4 -> LRELU -> CONV3-4 -> LRELU-0.2 -> leakyrelu-0 -> FC-2")
    slopes = [layer.negative_slope for layer in net.layers if isinstance(layer, LeakyReLU)]
    assert slopes == [0.01, 0.2, 0.0]
    assert [node.name for node in net.nodes][1::2] == ["lrelu1", "lrelu2", "fc1"]
    text = to_pattern(net)
    assert text == "INPUT[8x8x3] -> CONV3-4 -> LRELU -> CONV3-4 -> LRELU-0.2 -> LRELU-0.0 -> FC-2"
    assert to_pattern(parse(text)) == text
    assert to_pattern(Net.sequential([LeakyReLU(1e-5)], input_shape=(3,))) == "INPUT[3] -> LRELU-1e-05"
    assert parse("LRELU-1e-05").layers[0].negative_slope == 1e-5


@pytest.mark.parametrize("text, column, expected", [
    ("LRELU-x", 1, "LRELU-a"),
    ("CONV3-4 -> LRELU--1", 12, "LRELU-a"),
    ("LRELU/S2", 6, "LRELU alone"),
    ("LRELU3", 1, "a layer"),
])
def test_pattern_errors_point_at_the_layer(text, column, expected):
    with pytest.raises(PatternSyntaxError) as info:
        parse(text)
    assert info.value.column == column and expected in info.value.expected, str(info.value)


def test_summary_and_memory_see_it_written_in_place():
    net = parse("INPUT[8x8x3] -> CONV3-4 -> LRELU -> CONV3-4 -> LRELU")
    assert output_storage(net) == {"input": "new", "conv1": "new", "lrelu1": "in place", "conv2": "new",
                                   "lrelu2": "in place"}
    s = summarize(net, batch=2)
    assert s["lrelu1"].type == "LRELU" and s["lrelu1"].flops_forward == 2 * 2 * 8 * 8 * 4
    assert MemoryModel(net).estimate(2).activations_peak > 0


@pytest.mark.parametrize("kernels_on", ["1", "0"])
def test_a_net_runs_it_in_place_with_the_same_bits(monkeypatch, kernels_on):
    monkeypatch.setenv("CONVNET_NUMBA", kernels_on)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 6, 6, 2)).astype(np.float32)
    dy = rng.standard_normal((3, 6, 6, 3)).astype(np.float32)
    results = []
    for inplace in (True, False):
        net = Net.sequential([Conv2D(4, 3, padding=1), LeakyReLU(0.1), Conv2D(3, 1), LeakyReLU(0.1)],
                             input_shape=(6, 6, 2))
        net.build(rng=np.random.default_rng(0))
        net.inplace = inplace
        assert net.ownership().writes_into == ({"lrelu1": "conv1", "lrelu2": "conv2"} if inplace else {})
        y = net.forward(x, train=True)
        dx = net.backward(dy.copy())
        results.append((y.tobytes(), dx.tobytes(), {k: g.tobytes() for k, _, g in net.named_parameters()}))
    assert results[0] == results[1]
