"""``load(spec)``: the ``--data`` argument of the command line, parsed.

==================  ==============================================================
``digits``          scikit-learn's bundled 8×8 digits (the default; no download)
``mnist:DIR``       IDX files in DIR (``train-images-idx3-ubyte[.gz]`` ...)
``cifar10:DIR``     CIFAR-10 binary (``*.bin``) or python batches in DIR
``folder:DIR``      image folders: ``DIR/{train,test}/<class>/`` or ``DIR/<class>/``
``npz:FILE``        ``x_train/y_train/x_test/y_test``, ``x/y`` or ``images/labels``
==================  ==============================================================

Every loader returns ``(train, test)`` Datasets: NHWC float32 images, int64 labels.
"""
from __future__ import annotations

import os

from ..errors import ConfigError
from ._io import DEFAULT_MAX_BYTES
from .cifar import load_cifar10
from .dataset import Dataset
from .digits import load_digits
from .folder import load_image_folder_splits
from .idx import load_mnist
from .npz import load_npz

__all__ = ["FORMATS", "parse_spec", "load"]

FORMATS = ("digits", "mnist", "cifar10", "folder", "npz")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"mnist:/data/mnist" -> ("mnist", "/data/mnist")``; ``"digits" -> ("digits", None)``; ``~`` is expanded."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"Argument `--data` must be a string such as 'digits' or 'mnist:DIR'; received {spec!r}.")
    kind, sep, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in FORMATS:
        raise ConfigError(f"Argument `--data`={spec!r} names the unknown format {kind!r}; expected digits, "
                          f"mnist:DIR, cifar10:DIR, folder:DIR or npz:FILE.")
    if kind == "digits":
        if sep and arg:
            raise ConfigError(f"Argument `--data`={spec!r}: 'digits' takes no path.")
        return kind, None
    if not arg:
        raise ConfigError(f"Argument `--data`={spec!r} needs a path: {kind}:{'FILE' if kind == 'npz' else 'DIR'}.")
    return kind, os.path.expanduser(arg)


def load(spec: str, *, image_size=None, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Dataset, Dataset]:
    """``(train, test)`` for a data spec (see the module docstring).

    ``image_size=(H, W)`` resizes image-folder images; ``max_bytes`` caps what
    one file may make us allocate.
    """
    kind, arg = parse_spec(spec)
    if image_size is not None and kind != "folder":
        raise ConfigError(f"Argument `image_size` applies only to folder:DIR data; received it with {spec!r}.")
    if kind == "digits":
        return load_digits()
    if kind == "mnist":
        return load_mnist(arg, max_bytes=max_bytes)
    if kind == "cifar10":
        return load_cifar10(arg, max_bytes=max_bytes)
    if kind == "folder":
        return load_image_folder_splits(arg, image_size=image_size)
    return load_npz(arg, max_bytes=max_bytes)
