"""The one table of ONNX ops convnet imports: op → (handler, fold, the attributes it reads).

``handler(builder, node)`` runs when an input is an activation (it appends layers or re-describes
the activation); ``fold(node)`` runs when every input is a constant (NumPy, at import time).  An
op with only a fold is imported only where it computes constants.  An attribute not listed is
refused (ConfigError naming it); a listed attribute with a value the handler does not support
is refused there.  What each row becomes:

=====================  ==========================================================================
ONNX                   convnet
=====================  ==========================================================================
Conv                   Conv2D (groups, dilation, asymmetric pads, auto_pad), OIHW → HWIO
ConvTranspose          ConvTranspose2D (output_padding, output_shape, auto_pad)
MaxPool, AveragePool   MaxPool2D, AvgPool2D (ceil_mode, count_include_pad, dilations)
LpPool                 LpPool2D
GlobalAveragePool      GlobalAvgPool (output (N, C); ONNX's (N, C, 1, 1) in the same order)
GlobalMaxPool          GlobalMaxPool; GlobalLpPool: GlobalLpPool
                       (a window over the whole map where a reader needs (N, C, 1, 1) as a map)
ReduceMean, ReduceMax  GlobalAvgPool, GlobalMaxPool: over the spatial axes (2, 3) of a map only
LRN                    LRN (odd sizes)
BatchNormalization     BatchNorm (inference: the running statistics)
Relu, LeakyRelu        ReLU, LeakyReLU
Sigmoid, Clip          Sigmoid; ReLU (0, ∞), ReLU6 (0, 6), else Clip
Dropout                Dropout (inference: the identity; the mask output refused)
Softmax, LogSoftmax    Softmax, LogSoftmax over the matching NHWC axes
Gemm, MatMul           Dense (alpha, beta; transB folded in; rows CHW → HWC after a flattened map)
Add, Sum               Add (activations); a per-channel constant: a bias fused into the Conv/FC
                       before it, else ChannelAffine
Sub, Mul, Div          ChannelAffine with per-channel constants (BN written as Mul/Add);
                       Mul of two activations: Mul (a map times per-channel gates too)
Concat                 Concat (channels of maps, last axis of vectors)
Flatten, Reshape       no layer (a layout; see ops_shape.py); a channel shuffle: ChannelShuffle
Transpose              no layer (NCHW ↔ NHWC, size-1 axes); channel shuffle
Squeeze, Unsqueeze     no layer
Identity, Cast         no layer
Shape                  a constant whose batch entry is marked
Constant, ...          folded (ConstantOfShape, Gather, Slice, Neg, Sqrt, Reciprocal)
=====================  ==========================================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import fold as F
from . import ops_layers as K
from . import ops_shape as S

__all__ = ["Op", "OPS"]


@dataclass(frozen=True)
class Op:
    handler: Callable | None
    fold: Callable | None
    attributes: tuple[str, ...] = ()


_BROADCAST = ("broadcast", "axis")  # before opset 7
_POOL = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")

#: ONNX op type (domain ai.onnx) → how convnet imports it
OPS: dict[str, Op] = {
    # convolution and pooling
    "Conv": Op(K.conv, None, ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")),
    "ConvTranspose": Op(K.conv_transpose, None, ("auto_pad", "dilations", "group", "kernel_shape",
                                                 "output_padding", "output_shape", "pads", "strides")),
    "MaxPool": Op(K.max_pool, None, (*_POOL, "storage_order")),
    "AveragePool": Op(K.average_pool, None, (*_POOL, "count_include_pad")),
    "LpPool": Op(K.lp_pool, None, (*_POOL, "p")),
    "GlobalAveragePool": Op(K.global_average_pool, None),
    "GlobalMaxPool": Op(K.global_max_pool, None),
    "ReduceMean": Op(K.reduce_mean, None, ("axes", "keepdims", "noop_with_empty_axes")),
    "ReduceMax": Op(K.reduce_max, None, ("axes", "keepdims", "noop_with_empty_axes")),
    "GlobalLpPool": Op(K.global_lp_pool, None, ("p",)),
    # normalisation
    "LRN": Op(K.lrn, None, ("alpha", "beta", "bias", "size")),
    "BatchNormalization": Op(K.batch_norm, None, ("epsilon", "momentum", "spatial", "is_test", "training_mode",
                                                  "consumed_inputs")),
    # activations
    "Relu": Op(K.relu, F.FOLDS["Relu"]),
    "LeakyRelu": Op(K.leaky_relu, F.FOLDS["LeakyRelu"], ("alpha",)),
    "Sigmoid": Op(K.sigmoid, F.FOLDS["Sigmoid"]),
    "Clip": Op(K.clip, F.FOLDS["Clip"], ("min", "max")),
    "Dropout": Op(K.dropout, F.FOLDS["Dropout"], ("ratio", "is_test", "seed")),
    "Softmax": Op(K.softmax, None, ("axis",)),
    "LogSoftmax": Op(K.log_softmax, None, ("axis",)),
    # fully connected
    "Gemm": Op(K.gemm, None, ("alpha", "beta", "transA", "transB", "broadcast")),
    "MatMul": Op(K.matmul, F.FOLDS["MatMul"]),
    # elementwise and merges
    "Add": Op(K.add, F.FOLDS["Add"], _BROADCAST),
    "Sum": Op(K.add, F.FOLDS["Sum"]),
    "Sub": Op(K.sub, F.FOLDS["Sub"], _BROADCAST),
    "Mul": Op(K.mul, F.FOLDS["Mul"], _BROADCAST),
    "Div": Op(K.div, F.FOLDS["Div"], _BROADCAST),
    "Concat": Op(K.concat, F.FOLDS["Concat"], ("axis",)),
    # axes and layouts
    "Flatten": Op(S.flatten, F.FOLDS["Flatten"], ("axis",)),
    "Reshape": Op(S.reshape, F.FOLDS["Reshape"], ("allowzero",)),
    "Transpose": Op(S.transpose, F.FOLDS["Transpose"], ("perm",)),
    "Squeeze": Op(S.squeeze, F.FOLDS["Squeeze"], ("axes",)),
    "Unsqueeze": Op(S.unsqueeze, F.FOLDS["Unsqueeze"], ("axes",)),
    "Identity": Op(S.identity, F.FOLDS["Identity"]),
    "Cast": Op(S.cast, F.FOLDS["Cast"], ("to", "saturate", "round_mode")),
    "Shape": Op(S.shape, F.FOLDS["Shape"], ("start", "end")),
    # constants only
    "Constant": Op(None, F.FOLDS["Constant"], ("value", "value_float", "value_floats", "value_int", "value_ints")),
    "ConstantOfShape": Op(None, F.FOLDS["ConstantOfShape"], ("value",)),
    "Gather": Op(None, F.FOLDS["Gather"], ("axis",)),
    "Slice": Op(None, F.FOLDS["Slice"], ("starts", "ends", "axes")),
    "Neg": Op(None, F.FOLDS["Neg"]),
    "Sqrt": Op(None, F.FOLDS["Sqrt"]),
    "Reciprocal": Op(None, F.FOLDS["Reciprocal"]),
}
