"""PyTorch weights into convnet nets: ``load_state_dict(net, source)`` with torchvision's key names.

``source`` is a state dict (a mapping name → NumPy array or torch tensor), a safetensors file
(read by convnet's own reader, :mod:`convnet.train.safetensors_io`) or a PyTorch ``.pth``/``.pt``
file, read with ``torch.load(weights_only=True)`` when PyTorch is installed — never with plain
pickle.  Which key goes where:

* **Node names as module names** — the zoo ResNets (``conv1``, ``layer1.0.bn1``,
  ``layer2.0.downsample.0``, ``fc``) and :func:`torchvision_net`'s AlexNet and GoogLeNet
  (``features.0``, ``inception3a.branch2.1.conv``).
* **A chain with Caffe's names** (the zoo VGGs: ``conv1_1`` … ``fc8``) — by position in
  torchvision's two ``nn.Sequential``: ``features.<i>`` up to the first Dense,
  ``classifier.<j>`` from it (every node counts, as every module does there; torchvision's
  ``AdaptiveAvgPool2d`` between them is the identity on a 7×7 map and no node here).

and what changes on the way (:data:`CONVERTERS`, one function per layer class):

* ``Conv2D``: ``weight`` OIHW → HWIO, ``bias``; ``ConvTranspose2D``: ``weight (C, K/g, kh, kw)``
  → ``(kh, kw, K/g, C)``.
* ``Dense``: ``weight (K, D)`` → ``w (D, K)``; reading a map, the columns go from PyTorch's
  ``(C, H, W)`` flatten order to convnet's ``(H, W, C)`` (the first FC of AlexNet and VGG).
* ``BatchNorm``: ``weight``/``bias`` → ``gamma``/``beta``, ``running_mean``/``running_var`` →
  state; ``num_batches_tracked`` is skipped and eps is the convnet layer's own.

Every key must find its place and every place its key, with the shape it needs: a key
without a place, a place without a key, a mis-shaped key (and non-finite values) are one
CheckpointError listing them all, and then the net is left as it was.  ``ignore`` names key
prefixes to skip on purpose (GoogLeNet's training-only ``aux1.``, ``aux2.``).
"""
from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, DataFormatError, SecurityError
from ..layers import BatchNorm, Conv2D, ConvTranspose2D, Dense, Dropout, GlobalAvgPool, MaxPool2D, ReLU
from ..layers.merge import Concat
from ..net import Net
from ..train.checkpoint import require_finite
from ..train.safetensors_io import read_safetensors
from ..zoo import get as zoo_get
from ..zoo.registry import check_classes, scaled

__all__ = ["load_state_dict", "read_state_dict", "module_names", "torchvision_net", "CONVERTERS"]

#: how many names an error lists per kind of problem before "and N more"
_SHOWN = 12


# -- layout moves: PyTorch's layout -> convnet's ------------------------------------------------
def oihw_to_hwio(w: np.ndarray) -> np.ndarray:
    """A PyTorch kernel ``(K, C, kh, kw)`` as convnet's ``(kh, kw, C, K)``."""
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def linear_to_dense(w: np.ndarray, in_shape) -> np.ndarray:
    """``nn.Linear.weight (K, D)`` as ``Dense.w (D, K)``; after a map ``(H, W, C)`` the columns,
    in PyTorch's ``(C, H, W)`` flatten order, are reordered to convnet's ``(H, W, C)``."""
    if len(in_shape) == 3:
        h, wd, c = in_shape
        return np.ascontiguousarray(w.reshape(w.shape[0], c, h, wd).transpose(2, 3, 1, 0).reshape(h * wd * c, -1))
    return np.ascontiguousarray(w.T)


def _same(a: np.ndarray) -> np.ndarray:
    return a


# -- one function per layer class: torch parameter name -> where it goes ---------------------------
@dataclass(frozen=True)
class Slot:
    """Where one PyTorch tensor goes: ``layer.<store>[key]``, and how it must look."""

    store: str  # "params" or "state"
    key: str  # convnet's key: "w", "b", "gamma", "running_mean", ...
    torch_shape: tuple[int, ...]  # the shape the tensor must have
    convert: Callable[[np.ndarray], np.ndarray]  # PyTorch layout -> convnet layout


def conv2d_slots(layer: Conv2D, in_shape) -> dict[str, Slot]:
    kh, kw = layer.kernel_size
    slots = {"weight": Slot("params", "w", (layer.filters, in_shape[2] // layer.groups, kh, kw), oihw_to_hwio)}
    if layer.use_bias:
        slots["bias"] = Slot("params", "b", (layer.filters,), _same)
    return slots


def conv_transpose_slots(layer: ConvTranspose2D, in_shape) -> dict[str, Slot]:
    """``nn.ConvTranspose2d.weight (C, K/g, kh, kw)`` is convnet's ``w (kh, kw, K/g, C)``."""
    kh, kw = layer.kernel_size
    slots = {"weight": Slot("params", "w", (in_shape[2], layer.filters // layer.groups, kh, kw), oihw_to_hwio)}
    if layer.use_bias:
        slots["bias"] = Slot("params", "b", (layer.filters,), _same)
    return slots


def dense_slots(layer: Dense, in_shape) -> dict[str, Slot]:
    slots = {"weight": Slot("params", "w", (layer.units, math.prod(in_shape)),
                            lambda w: linear_to_dense(w, in_shape))}
    if layer.use_bias:
        slots["bias"] = Slot("params", "b", (layer.units,), _same)
    return slots


def batch_norm_slots(layer: BatchNorm, in_shape) -> dict[str, Slot]:
    c = (in_shape[-1],)
    return {"weight": Slot("params", "gamma", c, _same), "bias": Slot("params", "beta", c, _same),
            "running_mean": Slot("state", "running_mean", c, _same),
            "running_var": Slot("state", "running_var", c, _same)}


#: layer class -> its PyTorch parameters (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm*d);
#: the exact class
CONVERTERS: dict[type, Callable[[object, tuple], dict[str, Slot]]] = {
    Conv2D: conv2d_slots,
    ConvTranspose2D: conv_transpose_slots,
    Dense: dense_slots,
    BatchNorm: batch_norm_slots,
}

#: BatchNorm's counter, which convnet does not keep
_SKIPPED = "num_batches_tracked"


# -- which module is which node ---------------------------------------------------------------------
def module_names(net: Net, keys: Iterable[str] = ()) -> dict[str, str]:
    """convnet node name -> PyTorch module name: the node's own name, or — for a chain none of
    whose nodes is named like a module of ``keys`` — torchvision's ``features.<i>`` /
    ``classifier.<j>`` positions (VGG)."""
    modules = {k.rsplit(".", 1)[0] for k in keys}
    nodes = [n.name for n in net.nodes]
    if not net.is_sequential or modules & set(nodes) or not any(m.startswith(("features.", "classifier."))
                                                                 for m in modules):
        return {n: n for n in nodes}
    first_fc = next((i for i, n in enumerate(net.nodes) if isinstance(n.layer, Dense)), len(nodes))
    return {n: (f"features.{i}" if i < first_fc else f"classifier.{i - first_fc}") for i, n in enumerate(nodes)}


def _slots(net: Net, keys) -> tuple[dict[str, tuple[str, Slot]], set[str]]:
    """torch key -> (node, slot) for every parameter and buffer of the net, and the keys skipped
    on purpose (the BatchNorm counters)."""
    shapes = net.shapes()
    names = module_names(net, keys)
    out, skipped = {}, set()
    for node in net.nodes:
        layer = node.layer
        make = CONVERTERS.get(type(layer))
        module = names[node.name]
        if make is None:
            if layer.params or layer.state:
                raise ConfigError(f"load_state_dict: node {node.name!r} ({type(layer).__name__}) has parameters but "
                                  f"no PyTorch counterpart; layers with one are "
                                  f"{', '.join(c.__name__ for c in CONVERTERS)}.")
            continue
        for suffix, slot in make(layer, shapes[node.inputs[0]]).items():
            out[f"{module}.{suffix}"] = (node.name, slot)
        if isinstance(layer, BatchNorm):
            skipped.add(f"{module}.{_SKIPPED}")
    return out, skipped


# -- reading the source ------------------------------------------------------------------------------
def _as_numpy(name: str, value) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        t = value.detach().cpu()
        if t.is_floating_point() and t.element_size() < 4:  # float16 / bfloat16
            t = t.float()
        value = t.numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise CheckpointError(f"State dict entry {name!r} is a {type(value).__name__} of dtype {arr.dtype}, not "
                              f"an array of numbers.")
    return arr


def _torch_load(path: Path) -> Mapping:
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path} is a PyTorch file; reading it needs PyTorch (pip install 'convnet[torch]'), "
                              f"or save the weights as safetensors instead.") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SecurityError(f"Refused to load {path}: it holds objects other than tensors, and only weights are "
                            f"read (torch.load weights_only=True): {str(exc).splitlines()[0][:200]}") from None
    except Exception as exc:  # a truncated or corrupt archive: torch raises RuntimeError, EOFError, ...
        raise CheckpointError(f"{path} cannot be read as a PyTorch file: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict (name -> tensor).")
    return obj


def read_state_dict(source) -> dict[str, np.ndarray]:
    """``source`` as ``{name: NumPy array}``: a mapping, a safetensors file, or a PyTorch file (zip
    or legacy pickle: told apart by their first bytes, whatever the suffix)."""
    if isinstance(source, Mapping):
        return {str(k): _as_numpy(str(k), v) for k, v in source.items()}
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"Argument `source` must be a state dict, or the path of a .safetensors or .pth file; "
                          f"received {type(source).__name__}.")
    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"Weights file {path} does not exist.")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip archive, or its legacy pickle
        return {str(k): _as_numpy(str(k), v) for k, v in _torch_load(path).items()}
    try:
        tensors, _ = read_safetensors(path)
    except DataFormatError as exc:
        raise CheckpointError(f"{path} is neither a safetensors file nor a PyTorch file: {exc}") from exc
    return tensors


# -- loading ------------------------------------------------------------------------------------------
def _listed(items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def load_state_dict(net: Net, source, *, ignore: Iterable[str] = ()) -> Net:
    """Copy the weights of a PyTorch state dict with torchvision's names into ``net`` (built at
    its input shape first if needed); returns the net.

    ``source``: a mapping name → array or torch tensor, or the path of a safetensors or
    PyTorch file.  ``ignore``: key prefixes to skip (``("aux1.", "aux2.")``).  Raises
    CheckpointError listing every key without a place in the net, every parameter without a
    key and every mis-shaped key — the net unchanged.

    Example::

        net = load_state_dict(zoo.get("resnet18"), "resnet18-f37072fd.pth")   # torchvision's file
        net.predict(images)   # (N, 224, 224, 3), ImageNet-normalised as torchvision's
        net = load_state_dict(torchvision_net("googlenet"), "googlenet.pth", ignore=("aux1.", "aux2."))
    """
    if isinstance(ignore, str):
        ignore = (ignore,)
    ignore = tuple(ignore)
    tensors = read_state_dict(source)
    if ignore:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(ignore)}
    if not net.built:
        net.build()
    slots, skipped = _slots(net, tensors)
    unexpected = [k for k in tensors if k not in slots and k not in skipped]
    missing = [k for k in slots if k not in tensors]
    misshaped = [f"{k} {tuple(tensors[k].shape)} (expected {slots[k][1].torch_shape} for node {slots[k][0]!r})"
                 for k in slots if k in tensors and tuple(tensors[k].shape) != slots[k][1].torch_shape]
    if unexpected or missing or misshaped:
        problems = [f"{label} ({len(items)}): {_listed(items)}" for label, items in (
            ("keys with no place in the net", unexpected), ("parameters with no key", missing),
            ("mis-shaped keys", misshaped)) if items]
        raise CheckpointError(f"The state dict does not fit net {net.name or ''}: " + "; ".join(problems) + "."
                              + _hint(net, unexpected))
    require_finite({k: tensors[k] for k in slots})
    for key, (node, slot) in slots.items():
        layer = net[node]
        target = getattr(layer, slot.store)[slot.key]
        target[...] = net.xp.asarray(slot.convert(tensors[key]).astype(target.dtype, copy=False))
        layer.weights_changed()
    return net


def _hint(net: Net, unexpected: list[str]) -> str:
    hints = []
    if net.name in ("alexnet", "googlenet") and any(k.startswith(("features.", "inception", "conv1.conv"))
                                                    for k in unexpected):
        hints.append(f" torchvision's {net.name} is not the zoo's (Caffe's) net: load it into "
                     f"convnet.interop.torch.torchvision_net({net.name!r}).")
    if any(k.startswith(("aux1.", "aux2.")) for k in unexpected):
        hints.append(" aux1./aux2. are GoogLeNet's training-only auxiliary classifiers: pass ignore=('aux1.', "
                     "'aux2.') to skip them.")
    return "".join(hints)


# -- torchvision's own AlexNet and GoogLeNet -------------------------------------------------------------
def torchvision_net(name: str, *, num_classes: int = 1000, input_shape=(224, 224, 3), width: float = 1.0) -> Net:
    """An unbuilt convnet Net with torchvision's architecture and module names, for its weights.

    ``vgg11/13/16/19`` and ``resnet18/34/50/101/152`` are the zoo's nets (torchvision's
    definitions already).  ``alexnet`` and ``googlenet`` differ from the zoo's Caffe nets:

    * **alexnet** — Krizhevsky's "one weird trick" variant: 64-192-384-256-256 filters, no
      groups, no LRN, conv1 11×11/4 with padding 2 (floored), 3×3/2 max pools (floored), then
      dropout before fc6 and fc7.  torchvision's ``AdaptiveAvgPool2d(6)`` is the identity at
      224×224 and is not a node: at other sizes the first FC reads the map it gets.
    * **googlenet** — Inception v1 with BatchNorm (eps 1e-3) after every (bias-free) conv, no
      LRN, ceil-mode max pools, a 3×3 conv in the "5×5" branch (torchvision's), global average
      pooling, dropout 0.2, ``fc``; no auxiliary classifiers (load with
      ``ignore=("aux1.", "aux2.")``).  torchvision's pretrained model also sets
      ``transform_input``: it expects input scaled to [-1, 1] (``x/127.5 - 1``) here rather than
      ImageNet-normalised.
    """
    if name == "alexnet":
        return _alexnet(num_classes=num_classes, input_shape=input_shape, width=width)
    if name == "googlenet":
        return _googlenet(num_classes=num_classes, input_shape=input_shape, width=width)
    if name in ("vgg11", "vgg13", "vgg16", "vgg19") or name in {f"resnet{d}" for d in (18, 34, 50, 101, 152)}:
        return zoo_get(name, num_classes=num_classes, input_shape=input_shape, width=width)
    raise ConfigError(f"Argument `name` must be a torchvision model convnet can hold: alexnet, vgg11, vgg13, vgg16, "
                      f"vgg19, resnet18, resnet34, resnet50, resnet101, resnet152, googlenet; received {name!r}.")


def _alexnet(*, num_classes, input_shape, width) -> Net:
    check_classes(num_classes)
    c = lambda k: scaled(k, width)  # noqa: E731
    layers = [Conv2D(c(64), 11, stride=4, padding=2, fit="crop"), ReLU(), MaxPool2D(3, stride=2, fit="crop"),
              Conv2D(c(192), 5, padding=2), ReLU(), MaxPool2D(3, stride=2, fit="crop"),
              Conv2D(c(384), 3, padding=1), ReLU(), Conv2D(c(256), 3, padding=1), ReLU(),
              Conv2D(c(256), 3, padding=1), ReLU(), MaxPool2D(3, stride=2, fit="crop")]
    net = Net(name="alexnet_torchvision", input_shape=input_shape)
    for i, layer in enumerate(layers):
        net.add(layer, name=f"features.{i}")
    classifier = [Dropout(0.5, seed=6), Dense(c(4096)), ReLU(), Dropout(0.5, seed=7), Dense(c(4096)), ReLU(),
                  Dense(num_classes)]
    for i, layer in enumerate(classifier):
        net.add(layer, name=f"classifier.{i}")
    net.head = "softmax"
    return net


#: torchvision's Inception modules: (name, #1x1, #3x3 reduce, #3x3, #"5x5" reduce, #"5x5", pool proj)
_INCEPTIONS = [("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64), "maxpool3",
               ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64), ("4c", 128, 128, 256, 24, 64, 64),
               ("4d", 112, 144, 288, 32, 64, 64), ("4e", 256, 160, 320, 32, 128, 128), "maxpool4",
               ("5a", 256, 160, 320, 32, 128, 128), ("5b", 384, 192, 384, 48, 128, 128)]


def _basic_conv(net: Net, x: str, name: str, filters: int, kernel: int, *, stride: int = 1, padding: int = 0) -> str:
    """torchvision's BasicConv2d: ``<name>.conv`` (no bias) -> ``<name>.bn`` (eps 1e-3) -> ReLU."""
    net.add(Conv2D(filters, kernel, stride=stride, padding=padding, use_bias=False,
                   fit="crop" if stride > 1 else "error"), inputs=x, name=f"{name}.conv")
    net.add(BatchNorm(eps=1e-3), name=f"{name}.bn")
    return net.add(ReLU(), name=f"{name}.relu")


def _googlenet(*, num_classes, input_shape, width) -> Net:
    check_classes(num_classes)
    c = lambda k: scaled(k, width)  # noqa: E731
    net = Net(name="googlenet_torchvision", input_shape=input_shape)
    x = _basic_conv(net, "input", "conv1", c(64), 7, stride=2, padding=3)
    x = net.add(MaxPool2D(3, stride=2, fit="pad"), inputs=x, name="maxpool1")
    x = _basic_conv(net, x, "conv2", c(64), 1)
    x = _basic_conv(net, x, "conv3", c(192), 3, padding=1)
    x = net.add(MaxPool2D(3, stride=2, fit="pad"), inputs=x, name="maxpool2")
    for module in _INCEPTIONS:
        if module == "maxpool3":
            x = net.add(MaxPool2D(3, stride=2, fit="pad"), inputs=x, name=module)
        elif module == "maxpool4":
            x = net.add(MaxPool2D(2, stride=2, fit="pad"), inputs=x, name=module)
        else:
            tag, c1, c3r, c3, c5r, c5, proj = module
            p = f"inception{tag}."
            b1 = _basic_conv(net, x, p + "branch1", c(c1), 1)
            b2 = _basic_conv(net, _basic_conv(net, x, p + "branch2.0", c(c3r), 1), p + "branch2.1", c(c3), 3, padding=1)
            b3 = _basic_conv(net, _basic_conv(net, x, p + "branch3.0", c(c5r), 1), p + "branch3.1", c(c5), 3, padding=1)
            pool = net.add(MaxPool2D(3, stride=1, padding=1, fit="pad"), inputs=x, name=p + "branch4.0")
            b4 = _basic_conv(net, pool, p + "branch4.1", c(proj), 1)
            x = net.add(Concat(), inputs=[b1, b2, b3, b4], name=p + "output")
    net.add(GlobalAvgPool(), inputs=x, name="avgpool")
    net.add(Dropout(0.2, seed=5), name="dropout")
    net.add(Dense(num_classes), name="fc")
    net.head = "softmax"
    return net
