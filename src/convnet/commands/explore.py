"""``convnet explore MODEL [--image IMG] --out page.html``: one HTML page that shows a model's
layers, its activation maps for an image, its first filters and its predictions."""
from __future__ import annotations

import argparse

DESCRIPTION = """\
Write one HTML page (no network, no server: open it from disk) about MODEL: the layer table of
`convnet summary` beside a drawing of the volumes; for an input image, every layer's
activation maps (at most 64 channels a layer, quantised to 8 bits, shrunk when the page would
pass its size cap), the first layer's filters and the top predictions. Click a neuron to see
its receptive field on the input; in the first CONV layer also its dot product.

MODEL is a zoo name, a pattern, a checkpoint (.safetensors or run folder) or an .onnx file.
A checkpoint or ONNX model brings its weights; a zoo name or pattern is drawn with random
weights (seed 0), which shows the geometry but not what a trained net sees.

  convnet explore lenet5 --image digit.png --out lenet5.html
  convnet explore runs/latest --image digit.png --out digits.html
  convnet explore vgg16 --image photo.jpg --out vgg16.html
  convnet explore "INPUT[32x32x3] -> [CONV3-16 -> RELU -> POOL2]*2 -> FC-10" --out small.html
Without --image, a grey net gets a digit of the embedded digits data and a colour net a
drawn picture.
"""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("explore", help="write an HTML page exploring a model's layers and activations",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a zoo name, a pattern, a checkpoint or an .onnx file")
    p.add_argument("--image", metavar="IMG", help="the input image (resized to the model's input)")
    p.add_argument("--input", metavar="HxWxC", help="input shape of a zoo model or pattern (default: its own)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of a zoo model's or pattern's random weights")
    p.add_argument("--out", metavar="FILE.html", default="explore.html", help="the page to write (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import numpy as np

    from ..errors import ConfigError
    from ..models import is_checkpoint, is_onnx, load_model
    from ..pages import Subject, explore_payload, render_page, sample_image
    from ..paths import output_file
    from ._sizes import parse_hwc
    from .predict import load_image

    out = output_file(args.out, what="Option --out")
    if args.seed < 0:
        raise ConfigError(f"Option --seed must be a non-negative integer; received {args.seed}.")
    input_shape = parse_hwc(args.input) if args.input else None
    if is_checkpoint(args.model) or is_onnx(args.model):
        if input_shape is not None:
            raise ConfigError("Option --input applies to zoo models and patterns; a checkpoint or ONNX model has its own.")
        from ..train.run import TrainedNet

        trained = TrainedNet(args.model)
        net, shape, classes, prepare = trained.net, tuple(trained.input_shape), trained.classes, trained.prepare
        weights = f"trained, from {trained.path}"
        name = f"{net.name} ({args.model})" if net.name else args.model
    else:
        net = load_model(args.model, input_shape=input_shape)
        if net.input_shape is None:
            raise ConfigError(f"The pattern {args.model!r} has no INPUT[HxWxC]; start it with one or pass --input.")
        shape = tuple(net.input_shape)
        net.build(shape, rng=np.random.default_rng(args.seed))
        classes, prepare = None, (lambda x: x.astype(np.float32))
        weights = f"random (He initialisation, seed {args.seed}): an untrained net"
        name = net.name or args.model
    if len(shape) != 3:
        raise ConfigError(f"The explorer draws image inputs (HxWxC); {args.model} takes a flat input of shape {shape}.")
    if args.image:
        image = load_image(args.image, channels=shape[2], size=shape[:2])
        source = f"{args.image}, resized to {shape[0]}×{shape[1]}"
    elif shape[2] in (1, 3):
        image, source = sample_image(shape)
    else:
        raise ConfigError(f"{args.model} takes {shape[2]} channels; the explorer's inputs are grey (1) or RGB (3) images.")
    subject = Subject(net=net, image=image, x=prepare(image[None])[0], classes=classes, name=name,
                      weights=weights, image_source=source)
    payload = explore_payload(subject)
    page = render_page(title=f"Explore {subject.name}", lead="The engine's own numbers for this model and input: "
                       "the layer table, every layer's activation maps, the first filters and the predictions.",
                       payload=payload, script="explore.js", command="convnet " + " ".join(args.argv))
    out.write_text(page, encoding="utf-8")
    size = len(page.encode("utf-8"))
    print(f"wrote {out} ({size / 1e6:.2f} MB): {len(payload['layers'])} layers of {subject.name}; open it in a browser")
    return 0
