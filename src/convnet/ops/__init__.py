"""Stateless array math: every op is a ``*_forward -> (y, cache)`` / ``*_backward(dy, cache)`` pair.

Activations are NHWC, kernels HWIO.  ``reference.py`` holds the naive float64
loops written from the definitions; they are the tests' oracle and are not
imported here.  The convolution exported here is the fast one (:mod:`convnet.ops.fast`);
:mod:`convnet.ops.conv` is the readable im2col + GEMM with the same signature.
"""
from .activations import (
    clip_backward,
    clip_forward,
    dropout_backward,
    dropout_forward,
    identity_backward,
    identity_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu,
    relu6_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
)
from .conv import DEFAULT_WORKSPACE_BYTES
from .conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward
from .dense import dense_backward, dense_forward
from .fast import conv2d_backward, conv2d_forward
from .geometry import conv_geometry, conv_transpose_geometry, pool_geometry
from .local import locally_connected2d_backward, locally_connected2d_forward
from .losses import (
    multiclass_svm_backward,
    multiclass_svm_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from .merge import add_backward, add_forward, concat_backward, concat_forward, mul_backward, mul_forward
from .norm import (
    batch_norm_backward,
    batch_norm_forward,
    channel_affine_backward,
    channel_affine_forward,
    local_response_norm_backward,
    local_response_norm_forward,
)
from .pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_lp_pool_backward,
    global_lp_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    lp_pool2d_backward,
    lp_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)
from .pool_fractional import fractional_max_pool2d_backward, fractional_max_pool2d_forward
from .reshape import channel_shuffle_backward, channel_shuffle_forward, flatten_backward, flatten_forward
from .softmax import (
    log_softmax,
    log_softmax_backward,
    log_softmax_forward,
    softmax,
    softmax_backward,
    softmax_forward,
)

__all__ = [
    "DEFAULT_WORKSPACE_BYTES",
    "add_backward",
    "add_forward",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "batch_norm_backward",
    "batch_norm_forward",
    "channel_affine_backward",
    "channel_affine_forward",
    "channel_shuffle_backward",
    "channel_shuffle_forward",
    "clip_backward",
    "clip_forward",
    "concat_backward",
    "concat_forward",
    "conv2d_backward",
    "conv2d_forward",
    "conv_geometry",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward",
    "conv_transpose_geometry",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "flatten_backward",
    "flatten_forward",
    "fractional_max_pool2d_backward",
    "fractional_max_pool2d_forward",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "global_lp_pool_backward",
    "global_lp_pool_forward",
    "global_max_pool_backward",
    "global_max_pool_forward",
    "identity_backward",
    "identity_forward",
    "l2_pool2d_backward",
    "l2_pool2d_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "local_response_norm_backward",
    "local_response_norm_forward",
    "locally_connected2d_backward",
    "locally_connected2d_forward",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_forward",
    "lp_pool2d_backward",
    "lp_pool2d_forward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "mul_backward",
    "mul_forward",
    "multiclass_svm_backward",
    "multiclass_svm_forward",
    "pool_geometry",
    "relu",
    "relu6_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
    "softmax_forward",
]
