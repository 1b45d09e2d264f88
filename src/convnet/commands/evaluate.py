"""``convnet evaluate``: accuracy, top-5 and the confusion matrix of a checkpoint."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a data set's test split",
                       description="Accuracy, top-5 accuracy and the confusion matrix of a trained checkpoint.")
    e.add_argument("checkpoint", help="a .safetensors checkpoint written by `convnet train`")
    e.add_argument("--data", default=None, help="data spec (default: the one the checkpoint was trained on)")
    e.add_argument("--json", action="store_true", help="print JSON instead of text")
    e.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    from ..data import load as load_data
    from ..train.metrics import accuracy, confusion_matrix, top_k_accuracy
    from ..train.run import TrainedNet

    trained = TrainedNet(args.checkpoint)
    _, test = load_data(args.data or trained.config.data)
    scores = trained.scores(test.x)
    k = len(trained.classes)
    out = {"checkpoint": str(args.checkpoint), "samples": len(test), "accuracy": accuracy(scores, test.y)}
    if k > 5:
        out["top5_accuracy"] = top_k_accuracy(scores, test.y, 5)
    out["confusion_matrix"] = confusion_matrix(scores, test.y, k).tolist()
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    print(f"{out['samples']} test images: accuracy {out['accuracy']:.4f}"
          + (f", top-5 {out['top5_accuracy']:.4f}" if "top5_accuracy" in out else ""))
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(4, max(len(str(v)) for row in out["confusion_matrix"] for v in row) + 1)
    print(" " * 8 + "".join(f"{c[:width - 1]:>{width}}" for c in trained.classes))
    for name, row in zip(trained.classes, out["confusion_matrix"]):
        print(f"{name[:7]:>7} " + "".join(f"{v:>{width}}" for v in row))
    return 0
