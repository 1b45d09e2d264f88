"""One resolver for "which net?": a zoo name, a pattern, or a training checkpoint.

Every command that takes a MODEL (``summary``, ``gradcheck``, ``train --model/--arch``, and
``evaluate``/``predict`` through the checkpoint they load) asks :func:`load_model`; a later
format (``.onnx``) is one more branch here.
"""
from __future__ import annotations

import re
from pathlib import Path

from . import zoo
from .errors import CheckpointError, ConfigError, PatternSyntaxError
from .pattern import parse
from .train.checkpoint import load_checkpoint, resolve_checkpoint

__all__ = ["load_model", "from_description", "is_checkpoint"]


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
    if is_checkpoint(spec):
        if classes is not None or width is not None:
            raise ConfigError("Arguments `classes` and `width` apply to zoo models; a checkpoint records its own sizes.")
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


def from_description(desc: dict, image_shape, num_classes: int):
    """The net a checkpoint describes (``{"model": name, "model_args": {...}}`` or ``{"arch": pattern}``)."""
    if not isinstance(desc, dict):
        raise CheckpointError(f"The checkpoint's network description {desc!r} is not a JSON object.")
    if "model" in desc:
        return load_model(desc["model"], input_shape=tuple(image_shape), classes=num_classes,
                          model_args=desc.get("model_args"))
    if desc.get("arch"):
        return load_model(desc["arch"], input_shape=tuple(image_shape))
    raise CheckpointError(f"The checkpoint's network description {desc!r} names neither a model nor a pattern.")


def _from_checkpoint(spec, input_shape):
    path = resolve_checkpoint(spec)
    _, meta = load_checkpoint(path)
    try:
        shape, classes, desc = tuple(meta["input_shape"]), meta["classes"], meta["net"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a convnet training checkpoint (missing {exc}).") from None
    net = from_description(desc, shape, len(classes))
    if input_shape is not None:
        net.input_shape = tuple(input_shape)
    if not net.name:
        net.name = path.name
    return net
