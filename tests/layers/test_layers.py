"""Layers: shapes, params/grads, backward by finite differences, initialisation statistics,
BatchNorm running statistics, Dropout at inference, and PyTorch for Conv2D and BatchNorm."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.errors import ConfigError, GeometryError, ShapeError
from convnet.layers import (
    LRN,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    FractionalMaxPool2D,
    GlobalAvgPool,
    L2Pool2D,
    LeakyReLU,
    LocallyConnected2D,
    MaxPool2D,
    ReLU,
)
from oracle import (
    assert_close,
    away_from_zero,
    distinct_values,
    gradcheck,
    hwio_to_oihw,
    n,
    nchw_to_nhwc,
    nhwc_to_nchw,
    t,
)

F64 = np.float64

# (id, factory, per-sample input shape, train flag for the check, input kind)
LAYERS = [
    ("conv", lambda: Conv2D(3, 3, padding=1, dtype=F64), (5, 4, 2), False, "normal"),
    ("conv_nonsquare", lambda: Conv2D(4, (3, 2), stride=(2, 1), padding=((1, 0), (0, 1)), dilation=(1, 2),
                                      groups=2, dtype=F64), (6, 6, 2), False, "normal"),
    ("conv_fit_pad", lambda: Conv2D(2, 3, stride=2, fit="pad", use_bias=False, dtype=F64), (6, 6, 1), False, "normal"),
    ("conv_fit_crop", lambda: Conv2D(2, 2, stride=3, fit="crop", init="xavier", dtype=F64), (7, 5, 2), False, "normal"),
    ("conv_1x1", lambda: Conv2D(3, 1, dtype=F64), (3, 3, 4), False, "normal"),
    ("maxpool", lambda: MaxPool2D(2, dtype=F64), (4, 6, 2), False, "distinct"),
    ("maxpool_overlap", lambda: MaxPool2D(3, stride=2, padding=1, fit="pad", dtype=F64), (6, 5, 2), False, "distinct"),
    ("avgpool", lambda: AvgPool2D((2, 3), stride=(1, 2), padding=(1, 1), count_include_pad=False, dtype=F64),
     (4, 5, 2), False, "normal"),
    ("l2pool", lambda: L2Pool2D(2, stride=1, dtype=F64), (3, 4, 2), False, "normal"),
    ("fracpool_train", lambda: FractionalMaxPool2D(output_size=(3, 4), seed=3, dtype=F64), (5, 6, 2), True,
     "distinct"),
    ("fracpool_eval_fixed", lambda: FractionalMaxPool2D(ratio=0.6, dtype=F64), (6, 7, 2), False, "distinct"),
    ("fracpool_eval_average", lambda: FractionalMaxPool2D(output_size=3, test_mode="average", test_grids=3,
                                                           dtype=F64), (5, 5, 1), False, "distinct"),
    ("gap", lambda: GlobalAvgPool(dtype=F64), (3, 4, 3), False, "normal"),
    ("lrn", lambda: LRN(size=3, alpha=0.5, beta=0.75, k=1.0, dtype=F64), (2, 2, 5), False, "normal"),
    ("bn_train_4d", lambda: BatchNorm(dtype=F64), (3, 2, 3), True, "normal"),
    ("bn_eval_4d", lambda: BatchNorm(dtype=F64), (3, 2, 3), False, "normal"),
    ("bn_train_2d", lambda: BatchNorm(eps=1e-3, dtype=F64), (4,), True, "normal"),
    ("dense_from_image", lambda: Dense(3, dtype=F64), (2, 3, 2), False, "normal"),
    ("dense_vector", lambda: Dense(4, use_bias=False, init="xavier", dtype=F64), (5,), False, "normal"),
    ("flatten", lambda: Flatten(dtype=F64), (2, 3, 2), False, "normal"),
    ("relu", lambda: ReLU(dtype=F64), (3, 3, 2), False, "kink"),
    ("leaky_relu", lambda: LeakyReLU(0.1, dtype=F64), (3, 3, 2), False, "kink"),
    ("dropout_train", lambda: Dropout(0.4, seed=5, dtype=F64), (3, 4, 2), True, "normal"),
    ("dropout_eval", lambda: Dropout(0.4, seed=5, dtype=F64), (3, 4, 2), False, "normal"),
    ("local", lambda: LocallyConnected2D(2, (2, 3), stride=(1, 2), padding=(0, 1), dtype=F64), (3, 5, 2), False,
     "normal"),
]
IDS = [c[0] for c in LAYERS]


def draw(kind, rng, shape):
    if kind == "distinct":
        return distinct_values(rng, shape)
    if kind == "kink":
        return away_from_zero(rng, shape)
    return rng.standard_normal(shape)


def built(factory, input_shape, seed=0):
    layer = factory()
    layer.build(input_shape, rng=np.random.default_rng(seed))
    # non-trivial parameters (BatchNorm starts at gamma=1, beta=0; biases at 0)
    prng = np.random.default_rng(seed + 100)
    for k, v in layer.params.items():
        layer.params[k] = (v + 0.3 * prng.standard_normal(v.shape)).astype(v.dtype)
    if "running_var" in layer.state:
        layer.state["running_mean"] = prng.standard_normal(layer.state["running_mean"].shape)
        layer.state["running_var"] = prng.uniform(0.5, 2.0, layer.state["running_var"].shape)
    return layer


def _reset_randomness(layer):
    """Make a stochastic layer draw the same mask / regions on every call (for finite differences)."""
    if hasattr(layer, "rng") and hasattr(layer, "seed"):
        layer.rng = np.random.default_rng(layer.seed)


@pytest.mark.parametrize("factory, input_shape, train, kind", [c[1:] for c in LAYERS], ids=IDS)
def test_output_shape_and_params_grads(factory, input_shape, train, kind, rng):
    layer = built(factory, input_shape)
    x = draw(kind, rng, (2, *input_shape))
    y = layer.forward(x, train=train)
    assert y.shape == (2, *layer.output_shape(input_shape))
    assert y.dtype == np.float64
    assert set(layer.params) == set(layer.grads)
    for k in layer.params:
        assert layer.grads[k].shape == layer.params[k].shape
    dx = layer.backward(rng.standard_normal(y.shape))
    assert dx.shape == x.shape
    assert set(layer.params) == set(layer.grads)
    for k in layer.params:
        assert layer.grads[k].shape == layer.params[k].shape, k
        assert layer.grads[k].dtype == layer.params[k].dtype, k
    assert layer.num_params() == sum(v.size for v in layer.params.values())


@pytest.mark.parametrize("factory, input_shape, train, kind", [c[1:] for c in LAYERS], ids=IDS)
def test_backward_matches_finite_differences(factory, input_shape, train, kind, rng):
    layer = built(factory, input_shape)
    x = draw(kind, rng, (2, *input_shape))
    names = list(layer.params)

    def f(x, **params):
        layer.params.update(params)
        _reset_randomness(layer)
        return layer.forward(x, train=train, keep_cache=False)

    def vjp(dy, x, **params):
        layer.params.update(params)
        _reset_randomness(layer)
        layer.forward(x, train=train)
        dx = layer.backward(dy)
        return {"x": dx, **{k: layer.grads[k] for k in names}}

    arrays = {"x": x, **{k: v.copy() for k, v in layer.params.items()}}
    gradcheck(f, vjp, arrays, rng=rng, mode="auto", max_full=150)


def test_backward_without_forward_cache_is_refused(rng):
    layer = Conv2D(2, 3, padding=1, dtype=F64)
    x = rng.standard_normal((1, 4, 4, 1))
    y = layer.forward(x, keep_cache=False)
    with pytest.raises(ConfigError, match="backward"):
        layer.backward(np.ones_like(y))
    layer.forward(x)
    layer.backward(np.ones_like(y))
    with pytest.raises(ConfigError):  # the cache is released by backward
        layer.backward(np.ones_like(y))


def test_input_shape_must_match_the_built_shape(rng):
    """Spatially agnostic layers (CONV) run on any H, W with the same channels; fixed-size ones do not."""
    layer = Conv2D(2, 3, padding=1, dtype=F64)
    layer.forward(rng.standard_normal((1, 4, 4, 1)))
    assert layer.forward(rng.standard_normal((1, 5, 4, 1))).shape == (1, 5, 4, 2)
    with pytest.raises(ShapeError, match=r"\(4, 4, 2\)"):
        layer.forward(rng.standard_normal((1, 4, 4, 2)))
    for fixed in (Dense(3, dtype=F64), LocallyConnected2D(2, 3, dtype=F64), Flatten(dtype=F64)):
        fixed.forward(rng.standard_normal((1, 4, 4, 1)))
        with pytest.raises(ShapeError, match=r"\(5, 4, 1\)"):
            fixed.forward(rng.standard_normal((1, 5, 4, 1)))


def test_conv2d_notes_parameter_count():
    layer = Conv2D(10, 5, stride=1, padding=2)
    assert layer.output_shape((32, 32, 3)) == (32, 32, 10)
    layer.build((32, 32, 3), rng=np.random.default_rng(0))
    assert layer.num_params() == 760
    assert layer.params["w"].dtype == np.float32


# -- initialisation statistics ---------------------------------------------------------------------
def _he_layers():
    return [
        ("conv", Conv2D(64, 3, padding=1), (8, 8, 32), 3 * 3 * 32),
        ("conv_grouped", Conv2D(64, (3, 5), padding=(1, 2), groups=4), (8, 8, 32), 3 * 5 * 8),
        ("dense", Dense(256), (4, 4, 16), 256),
        ("local", LocallyConnected2D(16, 3), (6, 6, 8), 3 * 3 * 8),
    ]


@pytest.mark.parametrize("i", range(4), ids=["conv", "conv_grouped", "dense", "local"])
def test_he_initialisation_statistics(i):
    _, layer, input_shape, fan_in = _he_layers()[i]
    layer.build(input_shape, rng=np.random.default_rng(42))
    w = layer.params["w"].astype(np.float64)
    std = np.sqrt(2.0 / fan_in)
    se = std / np.sqrt(w.size)
    assert abs(w.mean()) < 5 * se
    assert abs(w.std() / std - 1) < 5 / np.sqrt(2 * w.size)
    if "b" in layer.params:
        assert not layer.params["b"].any()  # biases start at zero
    again = _he_layers()[i][1]
    again.build(input_shape, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(again.params["w"], layer.params["w"])  # seeded: reproducible
    other = _he_layers()[i][1]
    other.build(input_shape, rng=np.random.default_rng(43))
    assert not np.array_equal(other.params["w"], layer.params["w"])


@pytest.mark.parametrize(
    "layer, input_shape, fan_in, fan_out",
    [
        (Conv2D(48, 3, init="xavier"), (6, 6, 32), 3 * 3 * 32, 3 * 3 * 48),
        (Dense(300, init="xavier"), (200,), 200, 300),
    ],
    ids=["conv", "dense"],
)
def test_xavier_initialisation_statistics(layer, input_shape, fan_in, fan_out):
    layer.build(input_shape, rng=np.random.default_rng(7))
    w = layer.params["w"].astype(np.float64)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(w).max() <= a
    assert np.abs(w).max() > 0.99 * a
    var = a * a / 3
    assert abs(w.var() / var - 1) < 5 * np.sqrt(0.8 / w.size)  # Var(U²) = 4a⁴/45 → rel. s.e. sqrt(0.8/n)
    assert abs(w.mean()) < 5 * np.sqrt(var / w.size)


def test_unknown_init_is_refused():
    with pytest.raises(ConfigError, match="`init`"):
        Conv2D(4, 3, init="orthogonal").build((5, 5, 1))


# -- BatchNorm running statistics ------------------------------------------------------------------
@pytest.mark.oracle
@pytest.mark.parametrize("shape", [(4, 3, 5, 3), (6, 4)], ids=["nhwc", "nd"])
def test_batchnorm_running_statistics_like_torch(shape, rng, torch):
    layer = BatchNorm(momentum=0.1, eps=1e-5, dtype=F64)
    c = shape[-1]
    tbn = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(c, momentum=0.1, eps=1e-5).double()
    gamma, beta = rng.uniform(0.5, 1.5, c), rng.standard_normal(c)
    layer.build(shape[1:])
    layer.params["gamma"], layer.params["beta"] = gamma.copy(), beta.copy()
    with torch.no_grad():
        tbn.weight.copy_(t(torch, gamma))
        tbn.bias.copy_(t(torch, beta))
    to_t = nhwc_to_nchw if len(shape) == 4 else np.asarray
    back = nchw_to_nhwc if len(shape) == 4 else np.asarray
    tbn.train()
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1) + step
        y = layer.forward(x, train=True)
        ty = tbn(t(torch, to_t(x)))
        assert_close(y, back(n(ty)), what=f"train y step {step}")
        assert_close(layer.state["running_mean"], n(tbn.running_mean), what="running_mean")
        assert_close(layer.state["running_var"], n(tbn.running_var), what="running_var (unbiased)")
    # evaluation uses the running statistics, and leaves them alone
    tbn.eval()
    x = rng.standard_normal(shape)
    before = {k: v.copy() for k, v in layer.state.items()}
    y = layer.forward(x, train=False)
    assert_close(y, back(n(tbn(t(torch, to_t(x))))), what="eval y")
    expected = gamma * (x - before["running_mean"]) / np.sqrt(before["running_var"] + 1e-5) + beta
    assert_close(y, expected)
    for k in before:
        np.testing.assert_array_equal(layer.state[k], before[k])


def test_batchnorm_state_starts_at_zero_mean_unit_variance():
    layer = BatchNorm()
    layer.build((4, 4, 3))
    np.testing.assert_array_equal(layer.state["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(layer.state["running_var"], np.ones(3))
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(3))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(3))


# -- Dropout ----------------------------------------------------------------------------------------
def test_dropout_is_identity_at_inference(rng):
    layer = Dropout(0.5, seed=1, dtype=F64)
    x = rng.standard_normal((4, 3, 3, 2))
    y = layer.forward(x, train=False)
    np.testing.assert_array_equal(y, x)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy)


def test_dropout_layer_masks_are_seeded_and_change_between_calls(rng):
    x = np.ones((50, 40))
    a, b = Dropout(0.5, seed=3, dtype=F64), Dropout(0.5, seed=3, dtype=F64)
    ya1, yb1 = a.forward(x, train=True), b.forward(x, train=True)
    np.testing.assert_array_equal(ya1, yb1)
    ya2 = a.forward(x, train=True)
    assert not np.array_equal(ya1, ya2)  # a fresh mask every training pass
    assert abs((ya1 != 0).mean() - 0.5) < 5 * np.sqrt(0.25 / x.size)
    np.testing.assert_allclose(ya1[ya1 != 0], 2.0)


# -- PyTorch at the layer level ---------------------------------------------------------------------
@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    "kwargs, input_shape",
    [
        (dict(filters=4, kernel_size=3, stride=1, padding=1), (6, 5, 3)),
        (dict(filters=6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=3), (7, 6, 3)),
    ],
    ids=["plain", "grouped"],
)
def test_conv2d_layer_matches_torch(kwargs, input_shape, dtype, rng, torch):
    layer = Conv2D(**kwargs, dtype=dtype)
    layer.build(input_shape, rng=np.random.default_rng(0))
    layer.params["b"] = rng.standard_normal(kwargs["filters"]).astype(dtype)
    pad = kwargs["padding"]
    tconv = torch.nn.Conv2d(input_shape[2], kwargs["filters"], kwargs["kernel_size"], stride=kwargs["stride"],
                            padding=pad, dilation=kwargs.get("dilation", 1), groups=kwargs.get("groups", 1))
    tconv = tconv.double() if dtype == np.float64 else tconv.float()
    with torch.no_grad():
        tconv.weight.copy_(t(torch, hwio_to_oihw(layer.params["w"])))
        tconv.bias.copy_(t(torch, layer.params["b"]))
    x = rng.standard_normal((2, *input_shape)).astype(dtype)
    y = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    yt = tconv(xt)
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)), dtype=dtype, what="y")
    assert_close(dx, nchw_to_nhwc(n(xt.grad)), dtype=dtype, what="dx")
    assert_close(layer.grads["w"], n(tconv.weight.grad).transpose(2, 3, 1, 0), dtype=dtype, what="dw")
    assert_close(layer.grads["b"], n(tconv.bias.grad), dtype=dtype, what="db")


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_batchnorm_layer_matches_torch(dtype, rng, torch):
    shape = (4, 3, 3, 5)
    layer = BatchNorm(dtype=dtype)
    layer.build(shape[1:])
    gamma, beta = rng.uniform(0.5, 1.5, 5).astype(dtype), rng.standard_normal(5).astype(dtype)
    layer.params["gamma"], layer.params["beta"] = gamma, beta
    tbn = torch.nn.BatchNorm2d(5)
    tbn = tbn.double() if dtype == np.float64 else tbn.float()
    with torch.no_grad():
        tbn.weight.copy_(t(torch, gamma))
        tbn.bias.copy_(t(torch, beta))
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    y = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    yt = tbn(xt)
    yt.backward(t(torch, nhwc_to_nchw(dy)))
    assert_close(y, nchw_to_nhwc(n(yt)), dtype=dtype, what="y")
    assert_close(dx, nchw_to_nhwc(n(xt.grad)), dtype=dtype, what="dx")
    assert_close(layer.grads["gamma"], n(tbn.weight.grad), dtype=dtype, what="dgamma")
    assert_close(layer.grads["beta"], n(tbn.bias.grad), dtype=dtype, what="dbeta")
    assert_close(layer.state["running_mean"], n(tbn.running_mean), dtype=dtype, what="running_mean")
    assert_close(layer.state["running_var"], n(tbn.running_var), dtype=dtype, what="running_var")
    assert layer.state["running_var"].dtype == dtype


# -- output_shape agrees with forward on random geometry -------------------------------------------
@st.composite
def layer_configs(draw):
    kind = draw(st.sampled_from(["conv", "local", "max", "avg", "l2"]))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    fit = draw(st.sampled_from(["error", "crop", "pad"]))
    hw = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    if kind in ("conv", "local"):
        padding = draw(st.one_of(st.integers(0, 2), st.just("same"), st.just("valid")))
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        cls = Conv2D if kind == "conv" else LocallyConnected2D
        make = lambda: cls(2, kernel, stride=stride, padding=padding, dilation=dilation, fit=fit, dtype=F64)  # noqa: E731
    else:
        padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
        cls = {"max": MaxPool2D, "avg": AvgPool2D, "l2": L2Pool2D}[kind]
        make = lambda: cls(kernel, stride=stride, padding=padding, fit=fit, dtype=F64)  # noqa: E731
    return make, (*hw, 2)


@settings(max_examples=60, deadline=None)
@given(layer_configs())
def test_property_output_shape_equals_forward_shape(config):
    make, input_shape = config
    layer = make()
    try:
        expected = layer.output_shape(input_shape)
    except GeometryError:
        with pytest.raises(GeometryError):
            make().forward(np.zeros((1, *input_shape)))
        return
    y = layer.forward(np.random.default_rng(0).standard_normal((2, *input_shape)))
    assert y.shape == (2, *expected)
