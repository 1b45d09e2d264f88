"""Issue 16: onnx's own backend test suite, run against the importer (``ConvnetBackend``).

``onnx.backend.test.BackendTest`` (as tinygrad runs it): every case is an ONNX model with inputs
and the outputs onnx's reference computed; the backend imports the model into a convnet net, runs
it NCHW in / NCHW out, and the runner compares (shape, dtype, values).  Included: the op families
the importer maps (node tests) and the single-op models exported from PyTorch that the onnx wheel
ships (``pytorch-converted``, ``pytorch-operator``).  Every exclude says why.

The node cases are generated in memory by onnx's own case modules (the wheel ships no
``data/node`` folder; building the runner generates them, about 6 s).

A convnet net has one data input: the first graph input is the data and every other input is
bound as a constant for the run (the weights W of ``Conv(x, W)``, the shape of ``Reshape``).
"""
from __future__ import annotations

import os
import re
import warnings

import pytest

from oracle import require_module  # noqa: E402

onnx = require_module("onnx")
import onnx.backend.test  # noqa: E402

from convnet.interop.onnx.backend import ConvnetBackend  # noqa: E402

with warnings.catch_warnings():  # generating onnx's cases (all ops) warns about casts it tests on purpose
    warnings.simplefilter("ignore")
    backend_test = onnx.backend.test.BackendTest(ConvnetBackend, __name__)

# -- what is run ------------------------------------------------------------------------------------
INCLUDE = (
    # node tests, by op family
    r"^test_(basic_)?conv_(with|without)", r"^test_convtranspose", r"^test_maxpool", r"^test_averagepool",
    r"^test_lppool", r"^test_globalaveragepool", r"^test_globalmaxpool", r"^test_lrn", r"^test_batchnorm",
    r"^test_relu", r"^test_leakyrelu", r"^test_sigmoid", r"^test_clip", r"^test_(training_)?dropout",
    r"^test_softmax_(example|large|axis|negative|default)", r"^test_logsoftmax", r"^test_gemm", r"^test_matmul_",
    r"^test_add", r"^test_sum_", r"^test_sub", r"^test_mul", r"^test_div", r"^test_concat_", r"^test_flatten",
    r"^test_reshape", r"^test_transpose", r"^test_squeeze", r"^test_unsqueeze", r"^test_identity",
    r"^test_constantofshape_", r"^test_constant_cpu", r"^test_shape", r"^test_gather_(\d|2d|neg)",
    # single ops exported from PyTorch (pytorch-converted, pytorch-operator)
    r"^test_(Conv2d|ConvTranspose2d|MaxPool2d|AvgPool2d|BatchNorm2d|Linear|ReLU|LeakyReLU|Sigmoid)",
    r"^test_(Softmax|LogSoftmax|softmax_lastdim|softmax_functional|log_softmax)",
    r"^test_operator_(add|addconstant|addmm|clip|conv|convtranspose|flatten|maxpool|mm|permute2|view|concat2)",
    r"^test_single_relu_model",
    # the light models (real graphs, one weight value each) against onnx's stored outputs; VGG19 (548 MB)
    # only with CONVNET_ONNX_ALL=1
    r"^test_(bvlc_alexnet|zfnet512|inception_v1|inception_v2|resnet50|squeezenet|densenet121|shufflenet)_cpu",
    *([r"^test_vgg19_cpu"] if os.environ.get("CONVNET_ONNX_ALL") == "1" else []),
)

#: pattern -> why it is not run (each a limit of convnet's model of a network, or an op outside it);
#: the runner's names end in the device, ``_cpu``

EXCLUDE = {
    # inputs convnet nets do not take
    r"_u?int(8|16|32|64)_|_int32_trunc": "integer tensors: convnet nets compute in float32/float64",
    r"^test_(sigmoid|clip|leakyrelu|sub|div|mul)_example|^test_clip_(inbounds|outbounds|splitbounds|"
    r"min_greater_than_max|default_inbounds)_cpu|^test_sum_|^test_concat_1d|^test_matmul_1d|^test_gather_negative|"
    r"^test_dropout_default_old|^test_operator_view":
        "a rank-1 input (N,) has no per-sample axes; convnet's per-sample shapes are not empty",
    r"^test_identity_(sequence|opt)": "sequence and optional inputs: convnet nets take one tensor",
    # more than one data input
    r"^test_(add|sub|mul|div)_cpu|^test_concat_[23]d|^test_operator_(concat2|add_size1_broadcast|addmm)":
        "two data inputs that vary over the batch; a convnet net has one input (the other, bound as a "
        "constant, would differ per sample)",
    r"^test_(add|sub|mul|div)_bcast": "a per-channel constant on a (N, 4, 5) tensor: ChannelAffine takes maps "
                                      "(H, W, C) and vectors (D,)",
    # outputs convnet does not produce
    r"^test_maxpool_with_argmax": "MaxPool's Indices output: a convnet net has one output",
    r"_mask($|_)|^test_training_dropout": "Dropout in training (random) or its mask output: inference only, "
                                          "one output",
    r"^test_batchnorm_.*training_mode": "BatchNormalization in training mode (batch statistics and their outputs)",
    r"^test_constant_cpu|^test_constantofshape|^test_shape": "the graph output is a constant; a net computes its "
                                                           "output from its input",
    # geometry and axes outside convnet's per-sample, 2-D model
    r"^test_(maxpool|averagepool|lppool|convtranspose)_(1d|3d)|_3d_|(Conv|MaxPool|AvgPool|BatchNorm)(1d|3d)|"
    r"^test_operator_maxpool":
        "1-D and 3-D convolution/pooling: convnet's spatial layers are 2-D",
    r"^test_(maxpool|averagepool|lppool)_2d_pads": "pads of more than half the window: convnet's pooling "
                                                   "windows always cover some input",
    r"^test_flatten_(axis[023]|negative_axis[124])": "Flatten at an axis other than 1 merges samples or splits "
                                                      "a sample across rows",
    r"^test_reshape_(reordered_all|one_dim|negative_extended|allowzero)": "Reshape that moves values between "
                                                                          "samples (the batch axis changes)",
    r"^test_transpose_(default|all_permutations_[1-5])": "a transpose that moves the batch axis or reorders "
                                                         "a sample's axes: convnet follows NCHW↔NHWC and "
                                                         "size-1 moves only",
    r"^test_(log)?softmax_axis_0": "softmax over the batch axis",
    r"^test_unsqueeze_axis_0|^test_squeeze_cpu": "(un)squeezing the batch axis",
    r"^test_(un)?squeeze_negative_axes": "a 5-D tensor (or a map without its height): convnet holds maps as "
                                         "(H, W, C)",
    r"^test_gemm_(transposeA|all_attributes)": "Gemm with transA: the batch would be A's second axis",
    r"^test_gemm_default_matrix_bias": "a Gemm bias C that differs per row (per sample)",
    r"^test_matmul_(3d|4d|bcast)|^test_matmul_4d_1d": "batched MatMul: convnet's FC multiplies (N, K) by a "
                                                       "constant (K, M)",
    r"^test_gather_(0|1|2d_indices)": "Gather of activations: convnet imports Gather where it computes "
                                      "constants",
    r"_expanded": "function-expanded variants use ops outside convnet's set (ReduceMax, CastLike, Less, ...)",
}

for _pattern in INCLUDE:
    backend_test.include(_pattern)
for _pattern in EXCLUDE:
    backend_test.exclude(_pattern)



def _included(cases: dict) -> dict:
    """The test classes holding only what is included, on the CPU (the other thousands of onnx's
    cases would each be a "no matched include pattern" skip)."""
    for case in cases.values():
        for name in [n for n in vars(case) if n.startswith("test_")]:
            if not name.endswith("_cpu") or not any(re.search(p, name) for p in INCLUDE):
                delattr(case, name)
    return cases


CASES = _included(backend_test.test_cases)
globals().update(CASES)


@pytest.fixture(autouse=True)
def _onnx_home(tmp_path_factory, monkeypatch):
    """The runner writes the light models' inputs under $ONNX_HOME (~/.onnx): keep them in pytest's tmp."""
    monkeypatch.setenv("ONNX_HOME", str(tmp_path_factory.getbasetemp() / "onnx_home"))


def test_the_suite_runs_the_families_it_claims():
    """Each included family has cases that run (not all excluded), so an include cannot rot silently."""
    names = [n for case in CASES.values() for n in vars(case) if n.startswith("test_")]
    runnable = [n for n in names if not any(re.search(p, n) for p in EXCLUDE)]
    for family in ("conv_with", "convtranspose", "maxpool_2d", "averagepool_2d", "lppool_2d", "globalaveragepool",
                   "globalmaxpool", "lrn", "batchnorm", "relu", "leakyrelu", "sigmoid", "clip", "dropout",
                   "softmax", "logsoftmax", "gemm", "matmul_2d", "flatten", "reshape", "transpose", "unsqueeze",
                   "identity", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "Linear",
                   "operator_add", "operator_conv"):
        assert any(family in n for n in runnable), family
    assert len(runnable) >= 120, len(runnable)
