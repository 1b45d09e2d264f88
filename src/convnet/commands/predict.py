"""``convnet predict``: top-k classes, activation maps, dense score heatmaps."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError

PREDICT_HELP = """\
Classify image files with a trained checkpoint and print the top-k classes.

Each image is read with Pillow, converted to the checkpoint's channels (grey or RGB),
resized to its input size and scaled to [0, 1] like the training data.

  convnet predict runs/latest/best.safetensors digit.png
  convnet predict CKPT photo.jpg --show maps/        # activation maps of each layer (PNG)
  convnet predict FCN.safetensors big.jpg --dense heat.png
        # a fully convolutional checkpoint (`convnet convert`) slid over the whole image:
        # writes a heatmap of the top class's score over the image
"""


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify images with a checkpoint", description=PREDICT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=3, help="how many classes to print (default: %(default)s)")
    p.add_argument("--show", metavar="DIR", default=None, help="write each image's activation maps as PNG into DIR")
    p.add_argument("--dense", metavar="PNG", default=None,
                   help="score the whole (larger) image with a fully convolutional checkpoint and write a heatmap")
    p.add_argument("--shifts", type=int, default=1, help="with --dense: k×k shifted passes for a finer map (default: %(default)s)")
    p.set_defaults(func=run_predict)


def load_image(path, *, channels: int, size=None, max_pixels: int = 64_000_000) -> np.ndarray:
    """An image file as float32 ``(H, W, C)`` in [0, 1]; resized to ``size=(H, W)`` when given."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"Image {path}: no such file.")
    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise DataFormatError(f"Image {path}: {im.width}×{im.height} pixels is more than the cap of {max_pixels}.")
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None and (im.height, im.width) != tuple(size):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(f"Image {path}: cannot be read as an image ({exc}).") from None
    if channels == 1:
        a = a[..., None]
    elif channels != 3:
        raise ConfigError(f"The checkpoint expects {channels} channels; images can be given as grey (1) or RGB (3) only.")
    return a


def _softmax(s):
    z = np.exp(s - s.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def run_predict(args) -> int:
    from ..train.run import TrainedNet

    trained = TrainedNet(args.checkpoint)
    h, w, c = trained.input_shape
    if args.dense:
        return _predict_dense(trained, args)
    images = np.stack([load_image(p, channels=c, size=(h, w)) for p in args.images])
    probs = _softmax(trained.scores(images).astype(np.float64))
    k = min(args.top, len(trained.classes))
    for path, p in zip(args.images, probs):
        top = np.argsort(-p)[:k]
        print(f"{path}: " + ", ".join(f"{trained.classes[i]} ({p[i]:.3f})" for i in top))
    if args.show:
        _show(trained, images, args.images, Path(args.show))
    return 0


def _show(trained, images, names, folder: Path) -> None:
    from ..viz import plot_activations

    folder.mkdir(parents=True, exist_ok=True)
    for img, name in zip(images, names):
        maps = {}
        x = trained.normalizer(img[None]).astype(trained.dtype)
        trained.net.forward(x, train=False, keep_cache=False, observer=lambda n, y: maps.__setitem__(n, y[0]))
        out = folder / f"{Path(name).stem}_activations.png"
        plot_activations(maps, out)
        print(f"wrote {out}")


def _predict_dense(trained, args) -> int:
    from ..analysis.surgery import average_scores, dense_scores
    from ..viz.heatmap import plot_score_heatmap

    if any(l.kind == "FC" for l in trained.net.layers):
        raise ConfigError(f"--dense needs a fully convolutional checkpoint; convert {args.checkpoint} first with "
                          f"`convnet convert {args.checkpoint} --to-fully-conv --out FCN.safetensors`.")
    h, w, c = trained.input_shape
    for path in args.images:
        image = load_image(path, channels=c)
        if image.shape[0] < h or image.shape[1] < w:
            image = load_image(path, channels=c, size=(max(h, image.shape[0]), max(w, image.shape[1])))
        x = trained.normalizer(image[None])[0].astype(trained.dtype)
        scores, step = dense_scores(trained.net, x, crop_shape=(h, w), shifts=args.shifts)
        probs = _softmax(scores.astype(np.float64))
        mean = _softmax(average_scores(scores).astype(np.float64))
        best = int(np.argmax(mean))
        print(f"{path}: {scores.shape[0]}×{scores.shape[1]} score map (every {step[0]}×{step[1]} pixels); "
              f"averaged: {trained.classes[best]} ({mean[best]:.3f})")
        plot_score_heatmap(image, probs[..., best], crop_shape=(h, w), step=step, path=args.dense,
                           title=f"{Path(path).name}: P({trained.classes[best]}) per {h}×{w} window")
        print(f"wrote {args.dense}")
    return 0
