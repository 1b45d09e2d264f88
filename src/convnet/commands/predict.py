"""``convnet predict``: top-k classes, activation maps, dense score heatmaps."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError
from ._device import add_device_option

PREDICT_HELP = """\
Classify image files with a trained checkpoint and print the top-k classes.

CHECKPOINT is a .safetensors file or a run folder (its best checkpoint, else its last).
Each IMAGE is a file or a folder (every image file in it, in name order). Each image is
read with Pillow, converted to the checkpoint's channels (grey or RGB), resized (bilinear,
aspect ratio not kept) to its input size and scaled to [0, 1] like the training data; a
warning says when that shrinks an image more than 4x per side. An image that cannot be
read is reported and the others are still predicted (exit status 3 at the end).

  convnet predict runs/latest digit.png
  convnet predict runs/latest photos/ --top 5
  convnet predict CKPT photo.jpg --show maps/        # input, prediction and activation maps (PNG)
  convnet predict FCN.safetensors big.jpg --dense heat.png [--class cat]
        # a fully convolutional checkpoint (`convnet convert`) slid over the whole image:
        # writes a heatmap per class (the --top classes, or the one named by --class)
"""

#: shrinking an image more than this per side before predicting is worth a warning
SHRINK_WARNING = 4


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify images with a checkpoint", description=PREDICT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a .safetensors checkpoint or a run folder")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--top", type=int, default=3, help="how many classes to print (default: %(default)s)")
    p.add_argument("--show", metavar="DIR", default=None,
                   help="write each image's input, prediction and activation maps as PNG into DIR")
    p.add_argument("--dense", metavar="PNG", default=None,
                   help="score the whole (larger) image with a fully convolutional checkpoint and write heatmaps "
                        "(several images: PNG's name gets each image's name)")
    p.add_argument("--class", dest="class_name", metavar="NAME", default=None,
                   help="with --dense: map this class (default: the --top classes of the averaged scores)")
    p.add_argument("--image-size", metavar="HxW", default=None,
                   help="with --dense: resize each image to HxW first (default: its own size)")
    p.add_argument("--shifts", type=int, default=1, help="with --dense: k×k shifted passes for a finer map (default: %(default)s)")
    add_device_option(p)
    p.set_defaults(func=run_predict)


def load_image(path, *, channels: int, size=None, max_pixels: int = 64_000_000) -> np.ndarray:
    """An image file as float32 ``(H, W, C)`` in [0, 1]; resized to ``size=(H, W)`` when given."""
    return _read_image(path, channels=channels, size=size, max_pixels=max_pixels)[0]


def _read_image(path, *, channels: int, size=None, max_pixels: int = 64_000_000):
    """``(image, (original H, W))``; see :func:`load_image`."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"Image {path}: {'a folder' if path.is_dir() else 'no such file'}; expected an image file.")
    if channels not in (1, 3):
        raise ConfigError(f"The checkpoint expects {channels} channels; images can be given as grey (1) or RGB (3) only.")
    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise DataFormatError(f"Image {path}: {im.width}×{im.height} pixels is more than the cap of {max_pixels}.")
            original = (im.height, im.width)
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None and (im.height, im.width) != tuple(size):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except DataFormatError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataFormatError(f"Image {path}: cannot be read as an image ({exc}).") from None
    return (a[..., None] if channels == 1 else a), original


def image_paths(items) -> list[Path]:
    """Files as given; folders replaced by the image files in them (name order, hidden files skipped)."""
    from ..data.folder import IMAGE_EXTENSIONS

    out = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataFormatError(f"The folder {item} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
            out += found
        else:
            out.append(item)
    return out


def _softmax(s):
    z = np.exp(s - s.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def run_predict(args) -> int:
    from ..paths import output_file, output_folder
    from ..train.run import TrainedNet
    from ._sizes import parse_hw

    if args.top < 1:
        raise ConfigError(f"Option --top must be a positive integer; received {args.top}.")
    if args.shifts < 1:
        raise ConfigError(f"Option --shifts must be a positive integer; received {args.shifts}.")
    for flag, value in (("--class", args.class_name), ("--image-size", args.image_size)):
        if value is not None and not args.dense:
            raise ConfigError(f"Option {flag} applies only with --dense.")
    size = parse_hw(args.image_size, option="--image-size") if args.image_size else None
    if args.dense:
        output_file(args.dense, what="Option --dense")
    if args.show:
        output_folder(args.show, what="Option --show")
    trained = TrainedNet(args.checkpoint, device=args.device)
    if args.class_name is not None and args.class_name not in trained.classes:
        raise ConfigError(f"Option --class {args.class_name!r} is not one of the checkpoint's classes "
                          f"({', '.join(trained.classes)}).")
    paths = image_paths(args.images)
    if args.dense:
        return _predict_dense(trained, args, paths, size)
    h, w, c = trained.input_shape
    failed = 0
    k = min(args.top, len(trained.classes))
    for path in paths:
        try:
            image, original = _read_image(path, channels=c, size=(h, w))
        except DataFormatError as exc:
            print(f"convnet predict: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        shrink = max(original[0] / h, original[1] / w)
        if shrink > SHRINK_WARNING:
            print(f"convnet predict: warning: {path} is {original[0]}x{original[1]} (HxW) and was resized to the "
                  f"net's input {h}x{w}, {shrink:.0f}x smaller per side; fine detail is lost.", file=sys.stderr)
        p = _softmax(trained.scores(image[None]).astype(np.float64))[0]
        top = np.argsort(-p, kind="stable")[:k]
        line = ", ".join(f"{trained.classes[i]} ({p[i]:.3f})" for i in top)
        print(f"{path}: {line}")
        if args.show:
            _show(trained, image, path, Path(args.show), caption=f"{path.name}: {line}")
    return _failures(failed, len(paths))


def _failures(failed: int, total: int) -> int:
    """The exit status after ``failed`` of ``total`` images could not be read (each already reported)."""
    if not failed:
        return 0
    if total > 1:
        print(f"convnet predict: {failed} of {total} images could not be read.", file=sys.stderr)
    return DataFormatError.exit_code


def _show(trained, image, path: Path, folder: Path, *, caption: str) -> None:
    from ..viz import plot_activations

    from ..backend import to_numpy
    from ..device import to_device

    maps = {}
    x = to_device(trained.prepare(image[None]), trained.net.xp)
    with np.errstate(all="ignore"):
        trained.net.forward(x, train=False, keep_cache=False,
                            observer=lambda n, y: maps.__setitem__(n, to_numpy(y[0])))
    out = folder / f"{path.stem}_activations.png"
    plot_activations(maps, out, image=image, caption=caption)
    print(f"wrote {out}")


def _dense_path(dense: str, image: Path, several: bool) -> Path:
    d = Path(dense)
    return d.with_name(f"{d.stem}_{image.stem}{d.suffix or '.png'}") if several else d


def _predict_dense(trained, args, paths, size) -> int:
    from ..analysis.surgery import average_scores, dense_scores
    from ..viz.heatmap import plot_score_heatmaps

    if any(l.kind == "FC" for l in trained.net.layers):
        raise ConfigError(f"--dense needs a fully convolutional checkpoint; convert {args.checkpoint} first with "
                          f"`convnet convert {args.checkpoint} --to-fully-conv --out FCN.safetensors`.")
    h, w, c = trained.input_shape
    failed = 0
    for path in paths:
        try:
            image = load_image(path, channels=c, size=size)
            if image.shape[0] < h or image.shape[1] < w:
                image = load_image(path, channels=c, size=(max(h, image.shape[0]), max(w, image.shape[1])))
        except DataFormatError as exc:
            print(f"convnet predict: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        x = trained.prepare(image[None])[0]
        with np.errstate(all="ignore"):
            scores, step = dense_scores(trained.net, x, crop_shape=(h, w), shifts=args.shifts)
        if not np.all(np.isfinite(scores)):
            trained.scores(image[None, :h, :w])  # names the first layer with a non-finite output
        probs = _softmax(scores.astype(np.float64))
        mean = _softmax(average_scores(scores).astype(np.float64))
        if args.class_name is not None:
            chosen = [trained.classes.index(args.class_name)]
        else:
            chosen = list(np.argsort(-mean, kind="stable")[: min(args.top, len(trained.classes))])
        best = int(np.argmax(mean))
        print(f"{path}: {scores.shape[0]}×{scores.shape[1]} score map (every {step[0]}×{step[1]} pixels); "
              f"averaged: {trained.classes[best]} ({mean[best]:.3f})")
        out = _dense_path(args.dense, path, len(paths) > 1)
        maps = {trained.classes[i]: probs[..., i] for i in chosen}
        plot_score_heatmaps(image, maps, crop_shape=(h, w), step=step, path=out,
                            title=f"{path.name}: P(class) per {h}×{w} window")
        print(f"wrote {out}")
    return _failures(failed, len(paths))
