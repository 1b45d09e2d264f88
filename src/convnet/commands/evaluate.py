"""``convnet evaluate``: accuracy, top-5 and the confusion matrix of a checkpoint."""
from __future__ import annotations

import json
import sys

EVALUATE_HELP = """\
Accuracy, top-5 accuracy and the confusion matrix of a trained checkpoint on a data set's
test split. CHECKPOINT is a .safetensors file or a run folder (its best checkpoint, else
its last). Classes are matched by name: folder data whose class folders differ from the
classes the checkpoint was trained on (one missing, one extra, one renamed) is refused.
Folder images are resized (bilinear) to the checkpoint's input size unless --image-size
says otherwise.

  convnet evaluate runs/latest
  convnet evaluate runs/003/last.safetensors --data folder:~/photos --json
  mpiexec -n 4 convnet evaluate runs/latest   # each process scores a quarter; rank 0 reports
"""


def register(sub) -> None:
    import argparse

    from ._device import add_device_option

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a data set's test split",
                       description=EVALUATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("checkpoint", help="a .safetensors checkpoint, a run folder written by `convnet train`, or an "
                                      "ONNX model (classes 0..K-1; needs --data)")
    e.add_argument("--data", default=None, help="data spec (default: the one the checkpoint was trained on)")
    e.add_argument("--image-size", metavar="HxW", default=None,
                   help="folder data: resize images to HxW (default: the checkpoint's input size)")
    e.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_device_option(e)
    e.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    from ..data import load as load_data, parse_spec
    from ..errors import ConfigError
    from ..train.metrics import accuracy, confusion_matrix, top_k_accuracy
    from ..train.run import TrainedNet
    from ._sizes import parse_hw

    trained = TrainedNet(args.checkpoint, device=args.device)
    spec = args.data or trained.data
    if spec is None:
        raise ConfigError(f"{trained.path} records no data set; pass --data (e.g. folder:DIR).")
    size = None
    if parse_spec(spec)[0] == "folder":
        size = parse_hw(args.image_size, option="--image-size") if args.image_size else trained.input_shape[:2]
    elif args.image_size:
        raise ConfigError(f"Option --image-size applies only to folder:DIR data; received it with --data {spec}.")
    _, test = load_data(spec, image_size=size)
    labels = trained.labels_of(test)
    scores = _sharded_scores(trained, test.x)
    if scores is None:  # a rank other than 0 under mpiexec: its slice went to rank 0
        return 0
    k = len(trained.classes)
    out = {"checkpoint": str(trained.path), "samples": len(test), "accuracy": accuracy(scores, labels)}
    if k > 5:
        out["top5_accuracy"] = top_k_accuracy(scores, labels, 5)
    out["classes"] = list(trained.classes)
    out["confusion_matrix"] = confusion_matrix(scores, labels, k).tolist()
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    print(f"{trained.path}: {out['samples']} test images: accuracy {out['accuracy']:.4f}"
          + (f", top-5 {out['top5_accuracy']:.4f}" if "top5_accuracy" in out else ""))
    print("confusion matrix (rows: true class, columns: predicted):")
    print(confusion_table(trained.classes, out["confusion_matrix"]))
    return 0


def _sharded_scores(trained, x):
    """The scores of every image; under mpiexec each rank scores its contiguous slice and rank 0
    gathers them in order (None on the other ranks)."""
    import numpy as np

    from ..distributed import get_world, shard_bounds

    world = get_world()
    if not world.active:
        return trained.scores(x)
    lo, hi = shard_bounds(len(x), world.size, world.rank)
    mine = trained.scores(x[lo:hi]) if hi > lo else np.zeros((0, len(trained.classes)), trained.dtype)
    parts = world.allgather(mine, what="evaluation scores")
    return np.concatenate(parts) if world.is_root else None


def confusion_table(classes, matrix) -> str:
    """The confusion matrix as aligned text, class names written in full (never cut)."""
    names = [str(c) for c in classes]
    col = max(max(len(n) for n in names), max(len(str(v)) for row in matrix for v in row)) + 1
    lead = max(len(n) for n in names)
    lines = [" " * lead + " " + "".join(f"{n:>{col}}" for n in names)]
    lines += [f"{n:>{lead}} " + "".join(f"{v:>{col}}" for v in row) for n, row in zip(names, matrix)]
    return "\n".join(lines)
