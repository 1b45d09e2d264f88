"""Which network a training run uses: a pattern, a zoo name, or the default for the data."""
from __future__ import annotations

from ..errors import ConfigError
from ..models import from_description, load_model
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


def net_description(config, net) -> dict:
    """What a checkpoint records to rebuild the same net: the zoo name and arguments, or the pattern."""
    if config.model is not None:
        return {"model": config.model, "model_args": dict(config.model_args)}
    try:
        return {"arch": to_pattern(net)}
    except Exception:  # a non-sequential net made by hand: fall back to the configured text
        return {"arch": config.arch}


def build_model_from_description(desc: dict, image_shape, num_classes: int):
    """Rebuild the net a checkpoint describes (see :func:`net_description`)."""
    net = from_description(desc, image_shape, num_classes)
    if net.name is None:
        net.name = "convnet"
    return net
