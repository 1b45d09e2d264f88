"""One resolver for "which net?": a zoo name, a pattern, a training checkpoint or an ONNX model.

Every command that takes a MODEL (``summary``, ``gradcheck``, ``train --model/--arch``, and
``evaluate``/``predict`` through the checkpoint they load) asks :func:`load_model`.

A net imported from ONNX has no zoo name or pattern to record in a checkpoint: its checkpoint
describes it as ``{"onnx": "net/onnx"}`` and carries the ONNX file's bytes as that uint8 tensor,
so the checkpoint alone rebuilds it (:func:`from_description`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from . import zoo
from .errors import CheckpointError, ConfigError, PatternSyntaxError
from .interop import onnx as onnx_interop
from .pattern import parse
from .train.checkpoint import load_checkpoint, resolve_checkpoint
from .train.finetune import replace_classifier

__all__ = ["load_model", "from_description", "is_checkpoint", "is_onnx", "ONNX_TENSOR"]

#: the checkpoint tensor that holds an imported net's ONNX file
ONNX_TENSOR = "net/onnx"


def is_onnx(spec: str) -> bool:
    """Whether ``spec`` names an ONNX model file."""
    return isinstance(spec, str) and spec.strip().lower().endswith(".onnx")


def is_checkpoint(spec: str) -> bool:
    """Whether ``spec`` names a checkpoint: a ``.safetensors`` path or an existing folder (a run)."""
    spec = spec.strip()
    return spec.endswith(".safetensors") or ("->" not in spec and Path(spec).is_dir())


def load_model(spec: str, *, input_shape=None, classes=None, width=None, model_args=None):
    """An unbuilt Net for ``spec``: a checkpoint (its architecture; weights are not read), a zoo
    name (any case; ``classes``, ``width`` and ``model_args`` are passed to the builder) or a
    pattern.  ``input_shape`` replaces the net's own."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"Argument `model` must be a zoo name, a pattern or a checkpoint; received {spec!r}.")
    if is_checkpoint(spec) or is_onnx(spec):
        if classes is not None or width is not None:
            raise ConfigError("Arguments `classes` and `width` apply to zoo models; a checkpoint or ONNX model "
                              "records its own sizes.")
        if is_onnx(spec):
            return load_onnx(spec, input_shape=input_shape)
        return _from_checkpoint(spec, input_shape)
    try:
        name = zoo.canonical(spec)
    except ConfigError:
        name = None
    if name is not None:
        kwargs = dict(model_args or {})
        for key, value in (("input_shape", input_shape), ("num_classes", classes), ("width", width)):
            if value is not None:
                kwargs[key] = value
        return zoo.get(name, **kwargs)
    if classes is not None or width is not None:
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", spec.strip()):
            zoo.get(spec)  # a misspelt model name: "Unknown model ... did you mean"
        raise ConfigError("Arguments `classes` and `width` apply to zoo models; a pattern writes its own sizes.")
    try:
        net = parse(spec)
    except PatternSyntaxError:
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", spec.strip()):
            zoo.get(spec)  # a bare word that is no layer: a misspelt model name is likelier
        raise
    if input_shape is not None:
        net.input_shape = tuple(input_shape)
    return net


def load_onnx(path, *, input_shape=None):
    """The net of an ONNX model file, with its weights (NHWC input), named after the file."""
    if not Path(path).is_file():
        raise CheckpointError(f"ONNX model {path} {'is a folder' if Path(path).is_dir() else 'does not exist'}; "
                              f"expected an .onnx file.")
    net = onnx_interop.load(path, input_shape=None if input_shape is None else tuple(input_shape))
    if not net.name:
        net.name = Path(path).stem
    return net


def from_onnx_bytes(data: bytes, num_classes: int | None = None, *, source: str = "the checkpoint"):
    """An imported net rebuilt from an ONNX file's bytes; its classifier replaced when
    ``num_classes`` differs from the model's (fine-tuning on other classes)."""
    net = onnx_interop.convert(data, source=source).net
    if num_classes is not None and net.output_shape()[-1] != num_classes:
        replace_classifier(net, num_classes)
    return net


def from_description(desc: dict, image_shape, num_classes: int, *, tensors=None):
    """The net a checkpoint describes (``{"model": name, "model_args": {...}}``, ``{"arch": pattern}``
    or ``{"onnx": tensor name}`` with ``tensors`` holding the ONNX file's bytes)."""
    if not isinstance(desc, dict):
        raise CheckpointError(f"The checkpoint's network description {desc!r} is not a JSON object.")
    if "onnx" in desc:
        key = desc["onnx"]
        if tensors is None or key not in tensors:
            raise CheckpointError(f"The checkpoint describes an imported ONNX net but holds no tensor {key!r}.")
        return from_onnx_bytes(np.asarray(tensors[key], dtype=np.uint8).tobytes(), num_classes)
    if "model" in desc:
        return load_model(desc["model"], input_shape=tuple(image_shape), classes=num_classes,
                          model_args=desc.get("model_args"))
    if desc.get("arch"):
        return load_model(desc["arch"], input_shape=tuple(image_shape))
    raise CheckpointError(f"The checkpoint's network description {desc!r} names neither a model nor a pattern.")


def _from_checkpoint(spec, input_shape):
    path = resolve_checkpoint(spec)
    tensors, meta = load_checkpoint(path)
    try:
        shape, classes, desc = tuple(meta["input_shape"]), meta["classes"], meta["net"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a convnet training checkpoint (missing {exc}).") from None
    net = from_description(desc, shape, len(classes), tensors=tensors)
    if input_shape is not None:
        net.input_shape = tuple(input_shape)
    if not net.name:
        net.name = path.name
    return net
