"""Image folders: one sub-folder per class, read with Pillow.

Layouts accepted by ``load_image_folder_splits(folder)``::

    folder/train/<class>/*.png   folder/test/<class>/*.png    (``val/`` is accepted for ``test/``)
    folder/<class>/*.png         (one set, split with holdout_split: every 5th image of a class is test)

Classes are the sub-folder names in sorted order.  Files are taken in sorted
order; hidden files and files without an image extension are skipped.

Every image must have the same size unless ``image_size=(H, W)`` is given, in
which case each is resized (bilinear).  Channels: 1 when every image is
greyscale, else 3 (RGB; alpha is dropped, palettes expanded).  Before any
pixel is decoded the header size is checked against ``max_pixels``; any image
Pillow cannot read raises DataFormatError naming the file.
Values: NHWC float32 in [0, 1] (``value / 255``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError
from ._io import require_dir
from .dataset import Dataset, holdout_split

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "load_image_folder_splits"]

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp"}
DEFAULT_MAX_PIXELS = 4096 * 4096
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _image_files(class_dir: Path) -> list[Path]:
    return sorted(p for p in class_dir.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def _check_size(image_size):
    if image_size is None:
        return None
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)):
        raise ConfigError(f"Argument `image_size` must be a pair (H, W) of positive integers; received {image_size!r}.")
    return tuple(image_size)


def _open(path: Path, max_pixels: int):
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            w, h = img.size
            if w * h > max_pixels:
                img.close()
                raise DataFormatError(f"{path}: image is {w}x{h} = {w * h} pixels, above the cap of {max_pixels}.")
            return img
    except DataFormatError:
        raise
    except Exception as exc:  # UnidentifiedImageError, DecompressionBomb*, OSError, SyntaxError, ...
        raise DataFormatError(f"{path}: not a readable image ({type(exc).__name__}: {str(exc)[:100]}).") from None


def load_image_folder(folder, *, image_size=None, classes=None, max_pixels: int = DEFAULT_MAX_PIXELS,
                      name: str | None = None) -> Dataset:
    """One Dataset from ``folder/<class>/<image>``; ``classes`` fixes the class list (and order)."""
    folder = require_dir(folder, what="image folder")
    image_size = _check_size(image_size)
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = [p.name for p in class_dirs]
    else:
        unknown = sorted({p.name for p in class_dirs} - set(classes))
        if unknown:
            raise DataFormatError(f"{folder}: class folder(s) {', '.join(unknown)} are not among the classes "
                                  f"{', '.join(classes)}.")
    if not classes:
        raise DataFormatError(f"{folder}: no class sub-folders found; expected {folder}/<class>/<image files>.")
    files = [(p, ci) for ci, c in enumerate(classes) if (folder / c).is_dir() for p in _image_files(folder / c)]
    if not files:
        raise DataFormatError(f"{folder}: the class folders hold no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    # pass 1: headers only — sizes and modes
    sizes, grey = {}, True
    for p, _ in files:
        img = _open(p, max_pixels)
        with img:
            sizes.setdefault((img.size[1], img.size[0]), p)
            grey = grey and img.mode in _GREY_MODES
    if image_size is None and len(sizes) > 1:
        (s1, p1), (s2, p2) = list(sizes.items())[:2]
        raise DataFormatError(f"{folder}: images differ in size ({p1.name} is {s1[0]}x{s1[1]}, {p2.name} is "
                              f"{s2[0]}x{s2[1]} (HxW)); pass image_size=(H, W) to resize them.")
    h, w = image_size if image_size is not None else next(iter(sizes))
    channels = 1 if grey else 3
    x = np.empty((len(files), h, w, channels), dtype=np.float32)
    from PIL import Image

    for i, (p, _) in enumerate(files):
        img = _open(p, max_pixels)
        try:
            with img:
                img = img.convert("L" if grey else "RGB")
                if img.size != (w, h):
                    img = img.resize((w, h), Image.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
        except DataFormatError:
            raise
        except Exception as exc:
            raise DataFormatError(f"{p}: image could not be decoded ({type(exc).__name__}: {str(exc)[:100]}).") from None
        x[i] = (arr.reshape(h, w, channels) / np.float32(255.0))
    y = np.array([ci for _, ci in files], dtype=np.int64)
    return Dataset(x, y, tuple(classes), name or folder.name, str(folder))


def load_image_folder_splits(folder, *, image_size=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from ``folder/{train,test}/<class>/`` or, failing that, a held-out split of ``folder/<class>/``."""
    folder = require_dir(folder, what="image folder")
    test_dir = next((folder / n for n in ("test", "val") if (folder / n).is_dir()), None)
    if (folder / "train").is_dir() and test_dir is not None:
        train = load_image_folder(folder / "train", image_size=image_size, max_pixels=max_pixels,
                                  name=f"{folder.name}/train")
        test = load_image_folder(test_dir, image_size=image_size, classes=train.classes,
                                 max_pixels=max_pixels, name=f"{folder.name}/test")
        if test.image_shape != train.image_shape:
            raise DataFormatError(f"{folder}: test images are {test.image_shape} (HxWxC) but train images are "
                                  f"{train.image_shape}.")
        return train, test
    return holdout_split(load_image_folder(folder, image_size=image_size, max_pixels=max_pixels))
