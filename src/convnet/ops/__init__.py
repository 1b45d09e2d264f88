"""Stateless array math: every op is a ``*_forward -> (y, cache)`` / ``*_backward(dy, cache)`` pair.

Activations are NHWC, kernels HWIO.  ``reference.py`` holds the naive float64
loops written from the definitions; they are the tests' oracle and are not
imported here.  The convolution exported here is the fast one (:mod:`convnet.ops.fast`);
:mod:`convnet.ops.conv` is the readable im2col + GEMM with the same signature.
"""
from .activations import dropout_backward, dropout_forward, relu, relu_backward, relu_forward
from .conv import DEFAULT_WORKSPACE_BYTES
from .dense import dense_backward, dense_forward
from .fast import conv2d_backward, conv2d_forward
from .geometry import conv_geometry, pool_geometry
from .local import locally_connected2d_backward, locally_connected2d_forward
from .losses import (
    multiclass_svm_backward,
    multiclass_svm_forward,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from .norm import (
    batch_norm_backward,
    batch_norm_forward,
    local_response_norm_backward,
    local_response_norm_forward,
)
from .pool import (
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
from .pool_fractional import fractional_max_pool2d_backward, fractional_max_pool2d_forward

__all__ = [
    "DEFAULT_WORKSPACE_BYTES",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "batch_norm_backward",
    "batch_norm_forward",
    "conv2d_backward",
    "conv2d_forward",
    "conv_geometry",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "fractional_max_pool2d_backward",
    "fractional_max_pool2d_forward",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "l2_pool2d_backward",
    "l2_pool2d_forward",
    "local_response_norm_backward",
    "local_response_norm_forward",
    "locally_connected2d_backward",
    "locally_connected2d_forward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "multiclass_svm_backward",
    "multiclass_svm_forward",
    "pool_geometry",
    "relu",
    "relu_backward",
    "relu_forward",
    "softmax",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
]
