"""Which network a training run uses: a pattern, a zoo name, or the default for the data."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..models import ONNX_TENSOR, from_description, from_onnx_bytes, is_onnx, load_model
from ..pattern import to_pattern
from .config import DEFAULT_ARCH


def default_arch(image_shape, num_classes: int) -> str:
    h, w, c = image_shape
    return DEFAULT_ARCH.format(h=h, w=w, c=c, k=num_classes)


def build_model(config, image_shape, num_classes: int):
    """An unbuilt Net for ``config`` (``model`` zoo name, ``arch`` pattern, or the default) on the data's
    ``image_shape`` and ``num_classes``."""
    if config.model is not None:
        return load_model(config.model, input_shape=tuple(image_shape), classes=num_classes,
                          model_args=config.model_args)
    if config.arch is None and is_onnx(config.init_from or ""):
        # fine-tuning an imported net: its architecture and weights, a new classifier if needed
        return from_onnx_bytes(onnx_bytes(config), num_classes, source=config.init_from)
    net = load_model(config.arch if config.arch is not None else default_arch(image_shape, num_classes))
    if net.input_shape is not None and tuple(net.input_shape) != tuple(image_shape):
        raise ConfigError(
            f"The pattern's INPUT is {'x'.join(map(str, net.input_shape))} but the data's images are "
            f"{'x'.join(map(str, image_shape))}; change INPUT[...] or leave it out."
        )
    net.input_shape = tuple(image_shape)
    if net.name is None:
        net.name = "convnet"
    return net


def onnx_bytes(config) -> bytes:
    """The ONNX file a run was initialised from (``init_from``), read whole."""
    path = Path(config.init_from)
    if not path.is_file():
        raise ConfigError(f"Argument `init_from` {path} is not an ONNX file that exists.")
    return path.read_bytes()


def net_description(config, net) -> dict:
    """What a checkpoint records to rebuild the same net: the zoo name and arguments, the pattern, or
    (a net imported from ONNX) the tensor that holds the ONNX file."""
    if config.model is not None:
        return {"model": config.model, "model_args": dict(config.model_args)}
    if config.arch is None and is_onnx(config.init_from or ""):
        return {"onnx": ONNX_TENSOR}
    try:
        return {"arch": to_pattern(net)}
    except Exception:  # a non-sequential net made by hand: fall back to the configured text
        return {"arch": config.arch}


def build_model_from_description(desc: dict, image_shape, num_classes: int, *, tensors=None):
    """Rebuild the net a checkpoint describes (see :func:`net_description`)."""
    net = from_description(desc, image_shape, num_classes, tensors=tensors)
    if net.name is None:
        net.name = "convnet"
    return net
