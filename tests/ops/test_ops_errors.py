"""Bad input to the ops: the right convnet.errors class (also a ValueError/TypeError) and a message
that names the argument and what was received."""
from __future__ import annotations

import numpy as np
import pytest

from convnet.errors import ConfigError, ConvNetError, DTypeError, GeometryError, ShapeError
from convnet.ops.activations import dropout_forward, relu, relu_backward, relu_forward
from convnet.ops.fast import conv2d_backward, conv2d_forward
from convnet.ops.dense import dense_backward, dense_forward
from convnet.ops.local import locally_connected2d_backward, locally_connected2d_forward
from convnet.ops.losses import multiclass_svm_forward, softmax_cross_entropy_forward
from convnet.ops.norm import (
    batch_norm_backward,
    batch_norm_forward,
    local_response_norm_backward,
    local_response_norm_forward,
)
from convnet.ops.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)
from convnet.ops.pool_fractional import fractional_max_pool2d_backward, fractional_max_pool2d_forward

X = np.ones((2, 5, 5, 3))
W = np.ones((3, 3, 3, 4))
B = np.ones(4)
RNG = np.random.default_rng(0)

# (id, call, error class, built-in base, substrings the message must contain)
CASES = [
    # conv2d ------------------------------------------------------------------------------------
    ("conv_x_rank3", lambda: conv2d_forward(np.ones((5, 5, 3)), W), ShapeError, ValueError,
     ["`x`", "rank 4", "received shape (5, 5, 3)"]),
    ("conv_x_rank5", lambda: conv2d_forward(np.ones((1, 2, 5, 5, 3)), W), ShapeError, ValueError,
     ["`x`", "(1, 2, 5, 5, 3)"]),
    ("conv_x_int", lambda: conv2d_forward(np.ones((2, 5, 5, 3), dtype=np.int64), W), DTypeError, TypeError,
     ["`x`", "int64", "float32 or float64"]),
    ("conv_x_object", lambda: conv2d_forward(X.astype(object), W), DTypeError, TypeError, ["`x`", "object"]),
    ("conv_x_bool", lambda: conv2d_forward(X.astype(bool), W), DTypeError, TypeError, ["`x`", "bool"]),
    ("conv_x_list", lambda: conv2d_forward([[1.0]], W), DTypeError, TypeError, ["`x`", "list"]),
    ("conv_x_complex", lambda: conv2d_forward(X.astype(np.complex128), W), DTypeError, TypeError,
     ["`x`", "complex128"]),
    ("conv_x_float16", lambda: conv2d_forward(X.astype(np.float16), W), DTypeError, TypeError, ["`x`", "float16"]),
    ("conv_x_empty", lambda: conv2d_forward(np.ones((0, 5, 5, 3)), W), ShapeError, ValueError,
     ["`x`", "positive", "(0, 5, 5, 3)"]),
    ("conv_w_int", lambda: conv2d_forward(X, W.astype(np.int32)), DTypeError, TypeError, ["`w`", "int32"]),
    ("conv_w_dtype_mismatch", lambda: conv2d_forward(X, W.astype(np.float32)), DTypeError, TypeError,
     ["`w`", "float32", "float64"]),
    ("conv_b_dtype_mismatch", lambda: conv2d_forward(X, W, B.astype(np.float32)), DTypeError, TypeError,
     ["`b`", "float32"]),
    ("conv_w_rank3", lambda: conv2d_forward(X, np.ones((3, 3, 3))), ShapeError, ValueError,
     ["`w`", "HWIO", "(3, 3, 3)"]),
    ("conv_w_zero_size", lambda: conv2d_forward(X, np.ones((0, 3, 3, 4))), ShapeError, ValueError,
     ["`w`", "positive", "(0, 3, 3, 4)"]),
    ("conv_wrong_channels", lambda: conv2d_forward(X, np.ones((3, 3, 2, 4))), ShapeError, ValueError,
     ["`w`", "C=3", "(3, 3, 3, 4)", "(2, 5, 5, 3)"]),
    ("conv_wrong_channels_grouped", lambda: conv2d_forward(np.ones((1, 5, 5, 4)), W, groups=2), ShapeError,
     ValueError, ["`w`", "groups=2", "(3, 3, 2, 4)"]),
    ("conv_groups_not_dividing_C", lambda: conv2d_forward(X, np.ones((3, 3, 1, 4)), groups=2), ConfigError,
     ValueError, ["C=3", "groups=2", "(2, 5, 5, 3)"]),
    ("conv_groups_not_dividing_K", lambda: conv2d_forward(X, np.ones((3, 3, 1, 4)), groups=3), ConfigError,
     ValueError, ["K=4", "groups=3"]),
    ("conv_groups_zero", lambda: conv2d_forward(X, W, groups=0), ConfigError, ValueError, ["`groups`", "0"]),
    ("conv_groups_float", lambda: conv2d_forward(X, W, groups=1.0), ConfigError, ValueError, ["`groups`", "1.0"]),
    ("conv_b_shape", lambda: conv2d_forward(X, W, np.ones(3)), ShapeError, ValueError, ["`b`", "(4,)", "(3,)"]),
    ("conv_stride_zero", lambda: conv2d_forward(X, W, stride=0), ConfigError, ValueError, ["`stride`", "received 0"]),
    ("conv_stride_negative", lambda: conv2d_forward(X, W, stride=(1, -2)), ConfigError, ValueError,
     ["`stride`", "-2"]),
    ("conv_dilation_zero", lambda: conv2d_forward(X, W, dilation=0), ConfigError, ValueError, ["`dilation`", "0"]),
    ("conv_padding_string", lambda: conv2d_forward(X, W, padding="full"), ConfigError, ValueError,
     ["`padding`", "'full'"]),
    ("conv_padding_negative", lambda: conv2d_forward(X, W, padding=-1), ConfigError, ValueError,
     ["`padding`", "-1"]),
    ("conv_fit_bad", lambda: conv2d_forward(X, W, fit="floor"), ConfigError, ValueError, ["`fit`", "'floor'"]),
    ("conv_geometry", lambda: conv2d_forward(X, W, stride=3), GeometryError, ValueError,
     ["height 5", "F=3", "S=3", "P=0", "1.667"]),
    ("conv_kernel_too_big", lambda: conv2d_forward(X, np.ones((7, 3, 3, 4))), GeometryError, ValueError,
     ["height 5", "F=7"]),
    # pooling -----------------------------------------------------------------------------------
    ("maxpool_rank2", lambda: max_pool2d_forward(np.ones((5, 5))), ShapeError, ValueError, ["`x`", "(5, 5)"]),
    ("maxpool_int", lambda: max_pool2d_forward(np.ones((1, 4, 4, 1), dtype=np.uint8)), DTypeError, TypeError,
     ["`x`", "uint8"]),
    ("maxpool_nograd_bool", lambda: max_pool2d(X.astype(bool)), DTypeError, TypeError, ["`x`", "bool"]),
    ("avgpool_object", lambda: avg_pool2d_forward(X.astype(object)), DTypeError, TypeError, ["`x`", "object"]),
    ("l2pool_rank3", lambda: l2_pool2d_forward(np.ones((4, 4, 2))), ShapeError, ValueError, ["`x`", "(4, 4, 2)"]),
    ("pool_stride_zero", lambda: max_pool2d_forward(X, pool_size=2, stride=0), ConfigError, ValueError,
     ["`stride`", "0"]),
    ("pool_padding_string", lambda: avg_pool2d_forward(X, pool_size=3, stride=2, padding="full"), ConfigError,
     ValueError, ["`padding`", "'full'"]),
    ("pool_padding_over_half", lambda: max_pool2d_forward(X, pool_size=3, stride=1, padding=2), ConfigError,
     ValueError, ["padding", "half", "(1, 1)"]),
    ("pool_geometry", lambda: max_pool2d_forward(X, pool_size=2), GeometryError, ValueError,
     ["max_pool2d", "height 5", "F=2", "S=2", "2.5"]),
    ("fractional_samples_shape", lambda: fractional_max_pool2d_forward(X, samples=np.zeros((2, 3)), output_size=3),
     ShapeError, ValueError, ["`samples`", "(2, 3, 2)", "(2, 3)"]),
    ("fractional_output_too_big", lambda: fractional_max_pool2d_forward(X, samples=np.zeros((2, 3, 2)),
                                                                         output_size=(5, 3)),
     ShapeError, ValueError, ["height", "5"]),
    ("fractional_int", lambda: fractional_max_pool2d_forward(X.astype(np.int16), samples=np.zeros((2, 3, 2)),
                                                              output_size=3),
     DTypeError, TypeError, ["`x`", "int16"]),
    ("global_pool_rank2", lambda: global_avg_pool_forward(np.ones((2, 3))), ShapeError, ValueError, ["`x`", "(2, 3)"]),
    # normalization -----------------------------------------------------------------------------
    ("lrn_rank2", lambda: local_response_norm_forward(np.ones((2, 3))), ShapeError, ValueError, ["`x`", "(2, 3)"]),
    ("lrn_size_zero", lambda: local_response_norm_forward(X, size=0), ConfigError, ValueError, ["`size`", "0"]),
    ("lrn_alpha_string", lambda: local_response_norm_forward(X, alpha="1e-4"), ConfigError, ValueError,
     ["`alpha`", "'1e-4'"]),
    ("lrn_zero_scale", lambda: local_response_norm_forward(X, alpha=0.0, k=0.0), ConfigError, ValueError,
     ["`k`", "`alpha`"]),
    ("bn_rank3", lambda: batch_norm_forward(np.ones((2, 3, 4)), np.ones(4), np.ones(4), train=True), ShapeError,
     ValueError, ["`x`", "(2, 3, 4)"]),
    ("bn_int", lambda: batch_norm_forward(np.ones((2, 3), dtype=int), np.ones(3), np.ones(3), train=True),
     DTypeError, TypeError, ["`x`"]),
    ("bn_gamma_shape", lambda: batch_norm_forward(X, np.ones(4), np.ones(3), train=True), ShapeError, ValueError,
     ["`gamma`", "(3,)", "(4,)"]),
    ("bn_gamma_dtype", lambda: batch_norm_forward(X, np.ones(3, np.float32), np.ones(3), train=True), DTypeError,
     TypeError, ["`gamma`", "float32"]),
    ("bn_eps", lambda: batch_norm_forward(X, np.ones(3), np.ones(3), train=True, eps=0), ConfigError, ValueError,
     ["`eps`", "0"]),
    # dense, activations, losses ----------------------------------------------------------------
    ("dense_rank3", lambda: dense_forward(np.ones((2, 3, 4)), np.ones((12, 2))), ShapeError, ValueError,
     ["`x`", "(N, D)", "(2, 3, 4)"]),
    ("dense_w_shape", lambda: dense_forward(np.ones((2, 3)), np.ones((4, 2))), ShapeError, ValueError,
     ["`w`", "(3, K)", "(4, 2)"]),
    ("dense_b_shape", lambda: dense_forward(np.ones((2, 3)), np.ones((3, 2)), np.ones(3)), ShapeError, ValueError,
     ["`b`", "(2,)", "(3,)"]),
    ("dense_x_int", lambda: dense_forward(np.ones((2, 3), dtype=np.int8), np.ones((3, 2))), DTypeError, TypeError,
     ["`x`", "int8"]),
    ("relu_int", lambda: relu(np.arange(3)), DTypeError, TypeError, ["`x`", "int"]),
    ("relu_object", lambda: relu_forward(np.array([1.0, None])), DTypeError, TypeError, ["`x`", "object"]),
    ("dropout_rate_one", lambda: dropout_forward(X, rate=1.0, rng=RNG), ConfigError, ValueError, ["`rate`", "1.0"]),
    ("dropout_rate_negative", lambda: dropout_forward(X, rate=-0.1, rng=RNG), ConfigError, ValueError,
     ["`rate`", "-0.1"]),
    ("dropout_rate_string", lambda: dropout_forward(X, rate="0.5", rng=RNG), ConfigError, ValueError,
     ["`rate`", "'0.5'"]),
    ("dropout_int_x", lambda: dropout_forward(np.ones(3, dtype=int), rate=0.5, rng=RNG), DTypeError, TypeError,
     ["`x`"]),
    ("ce_labels_float", lambda: softmax_cross_entropy_forward(np.ones((2, 3)), np.array([0.0, 1.0])), DTypeError,
     TypeError, ["`labels`", "float64"]),
    ("ce_labels_bool", lambda: softmax_cross_entropy_forward(np.ones((2, 3)), np.array([True, False])), DTypeError,
     TypeError, ["`labels`", "bool"]),
    ("ce_labels_range", lambda: softmax_cross_entropy_forward(np.ones((2, 3)), np.array([0, 3])), ShapeError,
     ValueError, ["`labels`", "[0, 3)", "3"]),
    ("ce_labels_negative", lambda: softmax_cross_entropy_forward(np.ones((2, 3)), np.array([-1, 0])), ShapeError,
     ValueError, ["`labels`", "-1"]),
    ("ce_labels_shape", lambda: softmax_cross_entropy_forward(np.ones((2, 3)), np.array([0, 1, 2])), ShapeError,
     ValueError, ["`labels`", "(2,)", "(3,)"]),
    ("ce_scores_rank1", lambda: softmax_cross_entropy_forward(np.ones(3), np.array([0])), ShapeError, ValueError,
     ["`scores`", "(3,)"]),
    ("svm_scores_int", lambda: multiclass_svm_forward(np.ones((2, 3), dtype=int), np.array([0, 1])), DTypeError,
     TypeError, ["`scores`"]),
    # locally connected -------------------------------------------------------------------------
    ("local_w_rank", lambda: locally_connected2d_forward(X, W), ShapeError, ValueError,
     ["`w`", "(Ho, Wo, kh, kw, C, K)", "(3, 3, 3, 4)"]),
    ("local_dtype", lambda: locally_connected2d_forward(X, np.ones((3, 3, 3, 3, 3, 2), np.float32)), DTypeError,
     TypeError, ["`w`", "float32"]),
]


@pytest.mark.parametrize("call, cls, base, parts", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_named_error(call, cls, base, parts):
    with pytest.raises(cls) as info:
        call()
    err = info.value
    assert isinstance(err, ConvNetError) and isinstance(err, base)
    msg = str(err)
    for part in parts:
        assert part in msg, f"{part!r} not in message: {msg}"


# -- mismatched upstream gradients -------------------------------------------------------------------
def _forward_caches():
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 2))
    yield "conv2d", conv2d_forward(x, np.ones((3, 3, 2, 3)), padding=1), lambda dy, c: conv2d_backward(dy, c)
    yield "max_pool2d", max_pool2d_forward(x), max_pool2d_backward
    yield "avg_pool2d", avg_pool2d_forward(x), avg_pool2d_backward
    yield "l2_pool2d", l2_pool2d_forward(x), l2_pool2d_backward
    yield "global_avg_pool", global_avg_pool_forward(x), global_avg_pool_backward
    yield ("fractional_max_pool2d",
           fractional_max_pool2d_forward(x, samples=np.full((2, 2, 2), 0.5), output_size=3),
           fractional_max_pool2d_backward)
    yield "local_response_norm", local_response_norm_forward(x), local_response_norm_backward
    yield "batch_norm", batch_norm_forward(x, np.ones(2), np.zeros(2), train=True), batch_norm_backward
    yield "dense", dense_forward(x.reshape(2, -1), np.ones((32, 3))), dense_backward
    yield "relu", relu_forward(x), relu_backward
    yield ("locally_connected2d", locally_connected2d_forward(x, np.ones((2, 2, 3, 3, 2, 1))),
           locally_connected2d_backward)


@pytest.mark.parametrize("name, fwd, backward", list(_forward_caches()), ids=lambda v: v if isinstance(v, str) else "")
def test_mismatched_dy_shape(name, fwd, backward):
    y, cache = fwd
    bad = np.ones(y.shape[:-1] + (y.shape[-1] + 1,))
    with pytest.raises(ShapeError) as info:
        backward(bad, cache)
    msg = str(info.value)
    assert f"{name}_backward" in msg and "`dy`" in msg
    assert str(tuple(y.shape)) in msg and f"received shape {tuple(bad.shape)}" in msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name, fwd, backward", list(_forward_caches()), ids=lambda v: v if isinstance(v, str) else "")
def test_integer_dy_is_refused(name, fwd, backward):
    y, cache = fwd
    with pytest.raises(DTypeError, match="`dy`"):
        backward(np.ones(y.shape, dtype=np.int64), cache)


# -- naming of the argument the caller actually passed -----------------------------------------------
@pytest.mark.parametrize("op", [max_pool2d_forward, avg_pool2d_forward, l2_pool2d_forward, max_pool2d])
def test_pool_size_errors_name_pool_size(op):
    """BUG (ops/pool.py -> geometry.pool_geometry): a bad `pool_size` is reported as `kernel_size`,
    an argument the pooling ops do not have (pool_geometry passes it on as conv_geometry's kernel)."""
    with pytest.raises(ConfigError) as info:
        op(X, pool_size=0)
    assert "`pool_size`" in str(info.value)


def test_numpy_integer_hyperparameters_are_accepted():
    """stride/padding/kernel accept NumPy integers (numbers.Integral); `groups` and LRN `size` should too.

    BUG (ops/conv.py check_conv_args, ops/norm.py check_lrn_args): they test isinstance(v, int), so
    groups=np.int64(2) (e.g. read from a config array) is refused with "must be a positive integer;
    received np.int64(2)" while stride=np.int64(2) works.
    """
    x = np.ones((1, 4, 4, 2))
    y, _ = conv2d_forward(x, np.ones((3, 3, 2, 2)), stride=np.int64(1), padding=np.int64(1))
    assert y.shape == (1, 4, 4, 2)
    y, _ = conv2d_forward(x, np.ones((3, 3, 1, 2)), groups=np.int64(2))
    assert y.shape == (1, 2, 2, 2)
    y, _ = local_response_norm_forward(x, size=np.int64(3))
    assert y.shape == x.shape


@pytest.mark.parametrize("algorithm", ["im2col", "smallmap", "winograd2", "direct"])
def test_conv_dy_of_another_dtype_is_refused(algorithm):
    if algorithm == "direct":
        from convnet.ops import kernels

        if not kernels.enabled():
            pytest.skip("compiled kernels off")
    x = np.random.default_rng(1).standard_normal((8, 2, 2, 2)).astype(np.float32)
    y, cache = conv2d_forward(x, np.ones((3, 3, 2, 4), dtype=np.float32), padding=1, algorithm=algorithm)
    with pytest.raises(DTypeError) as info:
        conv2d_backward(y.astype(np.float64), cache)
    msg = str(info.value)
    assert "conv2d_backward" in msg and "`dy`" in msg and "float64" in msg and "float32" in msg
