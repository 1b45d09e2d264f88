"""``convnet train``: train a net, with checkpoints, logs and pictures."""
from __future__ import annotations

import argparse
import sys

from ..train.config import TrainConfig
from ..train.optimizers import OPTIMIZERS
from ._device import add_device_option
from ._sizes import parse_hw

TRAIN_HELP = """\
Train a ConvNet. With no arguments: a small ConvNet on scikit-learn's bundled 8x8 digits
(no download), a few seconds on 2 cores. Each run writes a new folder runs/001,
runs/002, ... (runs/latest points at the newest; no run ever replaces another):
last.safetensors and best.safetensors (checkpoints), metrics.json (test_accuracy...),
history.csv/json, curves.png (loss and accuracy per epoch), filters.png (first CONV layer).

Examples:
  convnet train
  convnet train --arch "INPUT[8x8x1] -> CONV3-16 -> RELU -> POOL2 -> FC-10" --epochs 5
  convnet train --model resnet20_cifar --data cifar10:~/data/cifar-10-batches-bin --batch 64
  convnet train --data folder:photos --image-size 64x64   # images resized (bilinear) to 64x64
  convnet train --out runs/a --resume          # continue exactly where runs/a stopped
  convnet train --out runs/a --resume --epochs 30   # ... and train it for longer
  mpiexec -n 4 convnet train --batch 64        # data parallel: 4 processes, 16 images each per step
  convnet train --model resnet20_cifar --data cifar10:DIR --device gpu   # on a CUDA GPU (CuPy, docs/gpu.md)

Under mpiexec (docs/distributed.md) --batch stays the global batch of one step: the same
command on 1 or N processes is the same training up to floating-point summation order.
"""


def register(sub) -> None:
    p = sub.add_parser("train", help="train a net on a data set", description=TRAIN_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig()
    g = p.add_argument_group("network (default: a small ConvNet sized to the data)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--model", help="a zoo name (see `convnet summary --list`)")
    x.add_argument("--arch", help='a layer pattern, e.g. "INPUT[32x32x3] -> [CONV3-32 -> RELU]*2 -> POOL2 -> FC-10"')
    g.add_argument("--init-from", metavar="CKPT", default=None,
                   help="fine-tune: start from this checkpoint's (or run folder's) weights (tensors whose shape "
                        "differs, such as a classifier for other classes, keep their new initialisation), or "
                        "from an ONNX model without --model/--arch (its architecture and weights, a new "
                        "classifier for other classes, no normalisation of the data)")
    g.add_argument("--freeze", default="", metavar="PREFIX[,PREFIX]",
                   help="fine-tune: do not train layers whose names start with these prefixes")
    g = p.add_argument_group("data")
    g.add_argument("--data", default=d.data, help="digits | mnist:DIR | cifar10:DIR | folder:DIR | npz:FILE (default: %(default)s)")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction, help="validation share of the training set (default: %(default)s)")
    g.add_argument("--crop-padding", type=int, default=d.crop_padding, help="random-crop augmentation with this zero padding (default: off)")
    g.add_argument("--hflip", action="store_true", help="random horizontal flips")
    g.add_argument("--image-size", metavar="HxW", default=None,
                   help="folder data: resize every image to HxW (bilinear, aspect ratio not kept); needed when "
                        "the images differ in size")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=d.epochs, help="(default: %(default)s)")
    g.add_argument("--batch", type=int, default=d.batch, help="mini-batch size (default: %(default)s)")
    g.add_argument("--optimizer", default=d.optimizer, choices=list(OPTIMIZERS), help="(default: %(default)s)")
    g.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    g.add_argument("--momentum", type=float, default=d.momentum, help="for momentum/nesterov (default: %(default)s)")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help="L2 added to the gradient (default: %(default)s)")
    g.add_argument("--schedule", default=d.schedule, choices=["constant", "step", "cosine"], help="learning-rate schedule (default: %(default)s)")
    g.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="linear warm-up steps (default: %(default)s)")
    g.add_argument("--clip-norm", type=float, default=None, help="clip the global gradient norm to this value")
    g.add_argument("--loss", default=d.loss, choices=["softmax", "svm"], help="(default: %(default)s)")
    g.add_argument("--dtype", default=d.dtype, choices=["float32", "float64"], help="(default: %(default)s)")
    g.add_argument("--seed", type=int, default=d.seed, help="seeds initialisation, shuffling, augmentation, dropout (default: %(default)s)")
    g = p.add_argument_group("run")
    g.add_argument("--out", default=None, help="output folder (default: a new numbered folder under runs/; "
                                                "a folder that holds a run is refused without --resume or --overwrite)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.safetensors (default OUT: runs/latest); options that change the "
                        "numbers must be the same, --epochs may grow")
    x.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    g.add_argument("--patience", type=int, default=None, help="early stopping after this many epochs without a better validation accuracy")
    g.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    g.add_argument("--checkpoint-every", type=int, default=0, help="also save last.safetensors every N steps (default: each epoch)")
    g.add_argument("--max-memory", default=None, help="memory budget, e.g. 4GB (default: the RAM available now)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    add_device_option(g)
    g = p.add_argument_group("data parallel (under mpiexec, docs/distributed.md)")
    g.add_argument("--no-sync-bn", dest="sync_bn", action="store_false",
                   help="BatchNorm statistics of each rank's slice instead of the global batch: less "
                        "communication, but a different computation whose result depends on the rank count")
    p.set_defaults(func=run_train)


def config_from_args(args) -> TrainConfig:
    from ..analysis.memory import parse_bytes

    return TrainConfig(
        data=args.data, arch=args.arch, model=args.model, epochs=args.epochs, batch=args.batch,
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        schedule=args.schedule, warmup_steps=args.warmup_steps, clip_norm=args.clip_norm, loss=args.loss,
        seed=args.seed, val_fraction=args.val_fraction, crop_padding=args.crop_padding, hflip=args.hflip,
        dtype=args.dtype, patience=args.patience, max_steps=args.max_steps,
        checkpoint_every=args.checkpoint_every, init_from=args.init_from,
        freeze=tuple(p for p in args.freeze.split(",") if p),
        max_memory=None if args.max_memory is None else parse_bytes(args.max_memory),
        image_size=None if args.image_size is None else parse_hw(args.image_size, option="--image-size"),
        # an imported ONNX model takes its input as it was trained to (its own preprocessing)
        normalize=not (args.init_from or "").lower().endswith(".onnx"),
        sync_batchnorm=None if getattr(args, "sync_bn", True) else False,
    )


def run_train(args) -> int:
    from ..distributed import get_world
    from ..train.run import train
    from ..train.runs import resolve_out, run_files

    from ..device import resolve_device

    config = config_from_args(args)
    resolve_device(args.device)  # a missing GPU is refused before a run folder is made
    world = get_world()
    out = world.on_root(lambda: resolve_out(args.out, resume=args.resume, overwrite=args.overwrite), what="run folder")
    try:
        metrics = train(config, out, resume=args.resume, quiet=args.quiet, world=world, device=args.device)
    except KeyboardInterrupt:
        if world.is_root:
            print(interrupted_message(args, out), file=sys.stderr)
        return 130
    if not world.is_root:
        return 0
    out = metrics["out_dir"]
    if metrics["best_epoch"] is not None:
        best = f"best validation {metrics['best_val_accuracy']:.4f} at epoch {metrics['best_epoch']}"
    elif metrics["validation"]:
        best = "no epoch completed, so no validation"
    else:
        best = "no validation split"
    print(f"test accuracy {metrics['test_accuracy']:.4f} ({best}); wrote {out}/: {', '.join(run_files(out))}")
    return 0


def interrupted_message(args, folder) -> str:
    """What Ctrl-C during training leaves behind, and the command that continues the run."""
    import shlex
    from pathlib import Path

    from ..train.checkpoint import load_checkpoint

    last = Path(folder) / "last.safetensors"
    if not last.is_file():
        return f"interrupted before the first checkpoint; nothing to resume in {folder}."
    try:
        meta = load_checkpoint(last)[1]
        epoch, step, inside = int(meta["epoch"]), int(meta["step"]), int(meta["step_in_epoch"])
        at = (f" (saved at the end of epoch {epoch}, step {step})" if not inside
              else f" (saved in epoch {epoch + 1} after batch {inside}, step {step})")
    except Exception:  # the message must never fail: the checkpoint is only described
        at = ""
    argv = [a for a in getattr(args, "argv", ["train"]) if a not in ("--resume", "--overwrite")]
    if not args.out:
        argv += ["--out", str(folder)]
    return (f"interrupted; the last checkpoint is {last}{at}. "
            f"Continue with: convnet {' '.join(map(shlex.quote, argv))} --resume")
