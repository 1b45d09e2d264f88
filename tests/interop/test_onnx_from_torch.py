"""Issue 16: zoo nets exported from PyTorch (``torch.onnx.export``) import and match.

The torchvision models written by hand in torchvision_like.py (random BN statistics, eval mode,
the small widths and inputs of test_torch_weights.py) are exported with the TorchScript exporter
(``dynamo=False``; opset 17, one case at opset 13, one with a dynamic batch axis), and the file is
imported with ``convnet.interop.onnx.load``.  Each case checks that

1. the imported net's logits on NHWC input equal PyTorch's on the same input in NCHW, at batch 1
   and 3 (max |diff| ≤ 1e-4·max|ref|) — a file exported at batch 1 runs any batch in convnet;
2. they equal ONNX Runtime's on the exported file (at the batch it declares; both when dynamic);
3. the imported net has the parameters and MACs of the convnet net that ``load_state_dict`` fills
   (the zoo's ResNet / VGG, ``torchvision_net`` for AlexNet and GoogLeNet), and computes what it
   computes.  PyTorch's eval-mode export folds each BatchNorm into the convolution before it: the
   imported net then has, per BN channel, one conv bias where the zoo net has γ and β; exported
   with ``do_constant_folding=False`` the BN nodes stay and the counts are equal.
"""
from __future__ import annotations

import types

import numpy as np
import pytest

import convnet
from convnet.interop.onnx import load
from convnet.interop.torch import load_state_dict, torchvision_net
from onnx_models import ort_run
from torchvision_like import alexnet, googlenet, randomized, resnet, vgg

pytestmark = [pytest.mark.oracle,  # the TorchScript exporter is deprecated, and says so
              pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.onnx")]


def _mean_view_forward(self, x):
    """A ResNet head written as ``x.mean((2, 3)).view(x.size(0), -1)``: ReduceMean, then a Reshape
    whose shape is computed from ``Shape(x)`` (the batch entry symbolic with a dynamic batch)."""
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    x = x.mean((2, 3))
    return self.fc(x.view(x.size(0), -1))


def _r18(torch):
    return resnet(torch, "basic", (2, 2, 2, 2), width=1 / 8, num_classes=7)


def _r50(torch):
    return resnet(torch, "bottleneck", (3, 4, 6, 3), width=1 / 16, num_classes=7)


def _googlenet(torch):
    return googlenet(torch, width=1 / 16, num_classes=4, aux=True)  # the aux heads are not exported


#: case -> (torch model, convnet net for its state dict, input size, export options, ops the file must have)
CASES = {
    "resnet18": (_r18, ("resnet18", 1 / 8, 7), 64, {}, {"GlobalAveragePool", "Flatten", "Gemm"}),
    "resnet50": (_r50, ("resnet50", 1 / 16, 7), 64, {}, {"GlobalAveragePool", "Gemm"}),
    "vgg11": (lambda torch: vgg(torch, "A", width=1 / 16, num_classes=5, map_hw=(2, 2)), ("vgg11", 1 / 16, 5), 64,
              {}, {"AveragePool", "Flatten", "Gemm"}),
    "vgg16": (lambda torch: vgg(torch, "D", width=1 / 16, num_classes=5, map_hw=(2, 2)), ("vgg16", 1 / 16, 5), 64,
              {}, {"AveragePool", "Gemm"}),
    # 127×127: a 3×3 last map, so the first FC's rows are permuted CHW -> HWC
    "alexnet": (lambda torch: alexnet(torch, width=1 / 16, num_classes=6, map_hw=(3, 3)), ("alexnet", 1 / 16, 6),
                127, {}, {"AveragePool", "Flatten", "Gemm"}),
    "googlenet": (_googlenet, ("googlenet", 1 / 16, 4), 64, {}, {"Concat", "GlobalAveragePool", "Gemm"}),
    "resnet18 opset 13": (_r18, ("resnet18", 1 / 8, 7), 64, {"opset_version": 13}, {"Gemm"}),
    "resnet50 dynamic batch": (_r50, ("resnet50", 1 / 16, 7), 64, {"dynamic": True}, {"Gemm"}),
    "resnet18 mean-view head, opset 18, dynamic batch": (
        lambda torch: _with_forward(_r18(torch), _mean_view_forward), ("resnet18", 1 / 8, 7), 64,
        {"opset_version": 18, "dynamic": True}, {"ReduceMean", "Shape", "Reshape"}),
    "googlenet BN kept (no constant folding)": (_googlenet, ("googlenet", 1 / 16, 4), 64, {"keep_bn": True},
                                                {"BatchNormalization"}),
}


def _with_forward(model, forward):
    model.forward = types.MethodType(forward, model)
    return model


def _export(torch, model, path, size, *, opset_version=17, dynamic=False, keep_bn=False):
    extra = {}
    if dynamic:
        extra["dynamic_axes"] = {"x": {0: "N"}, "y": {0: "N"}}
    if keep_bn:  # the eval-mode BN -> Conv fusion is part of PyTorch's constant folding
        extra["do_constant_folding"] = False
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), opset_version=opset_version, dynamo=False,
                      input_names=["x"], output_names=["y"], **extra)


def _close(got, ref, tol, what):
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    err = np.abs(got - ref).max()
    assert err <= tol * np.abs(ref).max(), f"{what}: max |diff| {err:.3g} vs max |ref| {np.abs(ref).max():.3g}"


@pytest.mark.parametrize("case", list(CASES))
def test_torch_onnx_export_imports_and_matches(case, torch, ort, onnx, rng, tmp_path):
    make, (zoo_name, width, classes), size, options, ops = CASES[case]
    model = randomized(torch, make(torch))
    path = tmp_path / "model.onnx"
    _export(torch, model, path, size, **options)
    proto = onnx.load(str(path))
    exported_ops = {n.op_type for n in proto.graph.node}
    assert ops <= exported_ops, f"the export no longer has {sorted(ops - exported_ops)}: {sorted(exported_ops)}"
    assert ("BatchNormalization" in exported_ops) == bool(options.get("keep_bn"))
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert (batch_dim.dim_param == "N") if options.get("dynamic") else (batch_dim.dim_value == 1)

    net = load(path)
    assert net.input_shape == (size, size, 3) and net.output_shape() == (classes,)

    # (1) PyTorch, and (2) ONNX Runtime at the batch sizes the file allows
    for batch in (1, 3):
        x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
        got = net.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))  # NCHW -> NHWC
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        _close(got, ref, 1e-4, f"PyTorch, batch {batch}")
        if batch == 1 or options.get("dynamic"):
            (theirs,) = ort_run(proto, {"x": x})
            _close(got, theirs, 1e-5, f"ONNX Runtime, batch {batch}")

    # (3) the convnet net that the state dict fills: the same parameters (less what the export
    # folded), MACs and logits
    ref_net = torchvision_net(zoo_name, width=width, num_classes=classes, input_shape=(size, size, 3))
    load_state_dict(ref_net, model.state_dict(), ignore=("aux1.", "aux2.") if "googlenet" in case else ())
    bn_channels = sum(m.num_features for name, m in model.named_modules()
                      if isinstance(m, torch.nn.BatchNorm2d) and not name.startswith("aux"))
    folded = 0 if options.get("keep_bn") else bn_channels  # γ, β (2 per channel) -> a conv bias (1)
    ours, theirs = convnet.summary(net), convnet.summary(ref_net)
    assert ours.total_params == theirs.total_params - folded
    assert ours.total_macs == theirs.total_macs
    x = rng.standard_normal((2, size, size, 3)).astype(np.float32)
    _close(net.predict(x), ref_net.predict(x), 1e-4, f"{zoo_name} filled by load_state_dict")
