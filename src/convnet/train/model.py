"""Which network a training run uses: a pattern, a zoo name, or the default for the data."""
from __future__ import annotations

from ..errors import ConfigError
from .config import DEFAULT_ARCH


def default_arch(image_shape, num_classes: int) -> str:
    h, w, c = image_shape
    return DEFAULT_ARCH.format(h=h, w=w, c=c, k=num_classes)


def build_model(config, image_shape, num_classes: int):
    """An unbuilt Net for ``config`` (``arch`` pattern, ``model`` zoo name, or the default)."""
    if config.model is not None:
        from .. import zoo

        kwargs = dict(config.model_args)
        kwargs.setdefault("num_classes", num_classes)
        kwargs.setdefault("input_shape", tuple(image_shape))
        return zoo.get(config.model, **kwargs)
    from ..pattern import parse

    net = parse(config.arch if config.arch is not None else default_arch(image_shape, num_classes))
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
        return {"arch": net.to_pattern()}
    except Exception:  # a non-sequential net made by hand: fall back to the configured text
        return {"arch": config.arch}


def build_model_from_description(desc: dict, image_shape, num_classes: int):
    """Rebuild the net a checkpoint describes (see :func:`net_description`)."""
    from .config import TrainConfig

    if "model" in desc:
        cfg = TrainConfig(model=desc["model"], model_args=dict(desc.get("model_args", {})))
    elif desc.get("arch"):
        cfg = TrainConfig(arch=desc["arch"])
    else:
        raise ConfigError(f"The checkpoint's network description {desc!r} names neither a model nor a pattern.")
    return build_model(cfg, image_shape, num_classes)
