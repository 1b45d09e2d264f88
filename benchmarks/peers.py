"""The peers, set up as their users would: PyTorch CPU, ONNX Runtime and MyGrad.

* **PyTorch**: 2 intra-op threads, ``channels_last`` activations and weights,
  ``torch.inference_mode()`` and ``eval()`` for inference.
* **ONNX Runtime**: the same PyTorch model exported with ``torch.onnx.export``
  (TorchScript exporter, opset 17) to a temporary file; ``ORT_ENABLE_ALL``,
  2 intra-op threads, sequential execution.
* **MyGrad** (the NumPy autograd class): ``mygrad.nnet.conv_nd`` on NCHW/OIHW.

:func:`torch_model` translates a convnet :class:`~convnet.net.Net` into an
``nn.Module`` with the same graph and a copy of its parameters, so both sides
compute the same function (the run checks the logits agree).  Each library is
given its input in its own layout once, before timing: layout moves are never
timed.
"""
from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np

_TORCH = None


def torch_or_none():
    """``torch`` pinned to 2 threads, or None when it is not installed."""
    global _TORCH
    if _TORCH is None:
        try:
            import torch
        except ImportError:
            return None
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        _TORCH = torch
    return _TORCH


def available(name: str) -> bool:
    if name == "torch":
        return torch_or_none() is not None
    try:
        __import__({"onnxruntime": "onnxruntime", "mygrad": "mygrad"}[name])
    except ImportError:
        return False
    return True


# -- layout moves ------------------------------------------------------------------------------
def nchw(x):
    return np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))


def oihw(w):
    return np.ascontiguousarray(np.asarray(w).transpose(3, 2, 0, 1))


def torch_cl(a, *, grad=False):
    """NHWC NumPy ``a`` -> a torch NCHW tensor stored channels_last (4-D), or plain (other ranks)."""
    torch = torch_or_none()
    if a.ndim == 4:
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)  # NCHW view of NHWC = channels_last
        t = t.contiguous(memory_format=torch.channels_last)
    else:
        t = torch.from_numpy(np.ascontiguousarray(a).copy())
    if grad:
        t.requires_grad_(True)
    return t


def torch_weight(w, *, grad=False):
    """HWIO ``w`` -> OIHW torch parameter in channels_last memory format."""
    torch = torch_or_none()
    t = torch.from_numpy(oihw(w)).contiguous(memory_format=torch.channels_last)
    if grad:
        t.requires_grad_(True)
    return t


# -- a convnet Net as an nn.Module -------------------------------------------------------------
def _symmetric(pads):
    (top, bottom), (left, right) = pads
    return (top, left) if top == bottom and left == right else None


def torch_model(net, input_shape=None):
    """An ``nn.Module`` computing the same function as ``net`` (parameters copied), in channels_last."""
    torch = torch_or_none()
    nn, F = torch.nn, torch.nn.functional
    from convnet.layers import Add, BatchNorm, Concat, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool2D, ReLU
    from convnet.zoo.blocks import PadShortcut

    shapes = net.shapes(input_shape)
    consumers = net.consumers()
    specs = []  # (name, kind, module_key or None, extra, inputs)
    mods = nn.ModuleDict()

    def key(name):
        return name.replace(".", "_").replace("/", "_")

    for node in net.nodes:
        layer, ins = node.layer, node.inputs
        in_shape = shapes[ins[0]]
        k = key(node.name)
        if isinstance(layer, Conv2D):
            geom = layer.geometry(in_shape)
            sym = _symmetric(geom.pads)
            # fit="crop" drops trailing rows from the bottom/right pads; PyTorch floors the same way
            sym = sym or (geom.pads[0][0], geom.pads[1][0])
            m = nn.Conv2d(in_shape[2], layer.filters, layer.kernel_size, stride=layer.stride, padding=sym,
                          dilation=layer.dilation, groups=layer.groups, bias=layer.use_bias)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(oihw(layer.params["w"])))
                if layer.use_bias:
                    m.bias.copy_(torch.from_numpy(np.asarray(layer.params["b"])))
            mods[k] = m
            specs.append((node.name, "module", k, None, ins))
        elif isinstance(layer, BatchNorm):
            c = in_shape[-1]
            m = (nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d)(c, eps=layer.eps, momentum=layer.momentum)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.asarray(layer.params["gamma"])))
                m.bias.copy_(torch.from_numpy(np.asarray(layer.params["beta"])))
                m.running_mean.copy_(torch.from_numpy(np.asarray(layer.state["running_mean"])))
                m.running_var.copy_(torch.from_numpy(np.asarray(layer.state["running_var"])))
            mods[k] = m
            specs.append((node.name, "module", k, None, ins))
        elif isinstance(layer, ReLU):
            inplace = ins[0] != "input" and len(consumers[ins[0]]) == 1  # as torchvision, where it is safe
            mods[k] = nn.ReLU(inplace=inplace)
            specs.append((node.name, "module", k, None, ins))
        elif isinstance(layer, MaxPool2D):
            geom = layer.geometry(in_shape)
            pad = (geom.pads[0][0], geom.pads[1][0])
            mods[k] = nn.MaxPool2d(layer.pool_size, stride=layer.stride, padding=pad)
            specs.append((node.name, "module", k, None, ins))
        elif isinstance(layer, Dense):
            d = int(np.prod(in_shape))
            m = nn.Linear(d, layer.params["w"].shape[1], bias="b" in layer.params)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.ascontiguousarray(np.asarray(layer.params["w"]).T)))
                if "b" in layer.params:
                    m.bias.copy_(torch.from_numpy(np.asarray(layer.params["b"])))
            mods[k] = m
            specs.append((node.name, "dense", k, len(in_shape), ins))
        elif isinstance(layer, Flatten):
            specs.append((node.name, "flatten", None, len(in_shape), ins))
        elif isinstance(layer, Dropout):
            mods[k] = nn.Dropout(layer.rate if hasattr(layer, "rate") else 0.5)
            specs.append((node.name, "module", k, None, ins))
        elif isinstance(layer, GlobalAvgPool):
            specs.append((node.name, "gap", None, None, ins))
        elif isinstance(layer, Add):
            specs.append((node.name, "add", None, None, ins))
        elif isinstance(layer, Concat):
            specs.append((node.name, "concat", None, None, ins))
        elif isinstance(layer, PadShortcut):
            before = (layer.filters - in_shape[2]) // 2
            after = layer.filters - in_shape[2] - before
            specs.append((node.name, "padshortcut", None, (layer.stride, before, after), ins))
        else:
            raise NotImplementedError(f"no PyTorch translation for {type(layer).__name__}")
    out_name = net.output_name

    def flatten_nhwc(x, rank):
        # convnet flattens (H, W, C) in NHWC order; do the same so the Dense weights line up
        return x.permute(0, 2, 3, 1).flatten(1) if rank == 3 else x.flatten(1)

    class GraphModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = mods

        def forward(self, x):
            acts = {"input": x}
            for name, kind, k, extra, ins in specs:
                a = [acts[i] for i in ins]
                if kind == "module":
                    y = self.mods[k](a[0])
                elif kind == "dense":
                    y = self.mods[k](flatten_nhwc(a[0], extra))
                elif kind == "flatten":
                    y = flatten_nhwc(a[0], extra)
                elif kind == "gap":
                    y = a[0].mean(dim=(2, 3))
                elif kind == "add":
                    y = a[0]
                    for t in a[1:]:
                        y = y + t
                elif kind == "concat":
                    y = torch.cat(a, dim=1)
                else:  # padshortcut
                    s, before, after = extra
                    y = F.pad(a[0][:, :, ::s, ::s], (0, 0, 0, 0, before, after))
                acts[name] = y
            return acts[out_name]

    model = GraphModule().to(memory_format=torch.channels_last)
    return model


def onnx_session(model, input_shape_nchw, *, threads: int = 2, path: str | None = None):
    """Export ``model`` (eval) to ONNX and open an ONNX Runtime session; returns ``(session, path)``."""
    torch = torch_or_none()
    import onnxruntime as ort

    if path is None:
        fd, path = tempfile.mkstemp(suffix=".onnx", prefix="convnet-bench-")
        os.close(fd)
        model.eval()
        dummy = torch.zeros(input_shape_nchw, dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (dummy,), path, input_names=["x"], output_names=["y"], opset_version=17,
                              dynamo=False)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    return sess, path


def mygrad_conv(x_nhwc, w_hwio, b, *, stride, padding):
    """Closures ``(forward, forward_backward)`` for MyGrad's ``conv_nd`` on the same data (NCHW)."""
    import mygrad as mg

    x = mg.tensor(nchw(x_nhwc))
    w = mg.tensor(oihw(w_hwio))
    bias = None if b is None else mg.tensor(np.asarray(b).reshape(1, -1, 1, 1))

    def fwd():
        y = mg.nnet.conv_nd(x, w, stride=stride, padding=padding, constant=True)
        if bias is not None:
            y = y + bias.data
        return y

    def fwd_bwd_factory(dy_nchw):
        def run():
            y = mg.nnet.conv_nd(x, w, stride=stride, padding=padding)
            if bias is not None:
                y = y + bias
            y.backward(dy_nchw)
            return x.grad, w.grad

        return run

    return fwd, fwd_bwd_factory
