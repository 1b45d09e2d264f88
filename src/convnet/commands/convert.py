"""``convnet convert``: FC layers become CONV layers (the notes' net surgery)."""
from __future__ import annotations

import numpy as np


def register(sub) -> None:
    c = sub.add_parser("convert", help="convert a checkpoint's FC layers to CONV layers",
                       description="Net surgery (the notes' FC->CONV conversion): every FC layer becomes the "
                                   "equivalent CONV layer, so the net slides over larger images in one pass.")
    c.add_argument("checkpoint", help="a .safetensors checkpoint or a run folder")
    c.add_argument("--to-fully-conv", action="store_true", required=True, help="convert FC layers to CONV layers")
    c.add_argument("--out", required=True, help="the converted checkpoint (.safetensors; an existing file is refused)")
    c.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never the input checkpoint)")
    c.set_defaults(func=run_convert)


def run_convert(args) -> int:
    from ..analysis.surgery import to_fully_convolutional
    from ..errors import ConfigError, PathError
    from ..paths import output_file
    from ..pattern import to_pattern
    from ..train.checkpoint import load_checkpoint, save_checkpoint
    from ..train.model import build_model_from_description
    from ..train.run import TrainedNet

    out_path = output_file(args.out, what="Option --out")
    trained = TrainedNet(args.checkpoint)
    if out_path.exists() and out_path.resolve() == trained.path.resolve():
        raise PathError(f"Option --out {out_path} is the checkpoint being converted; write the converted one elsewhere.")
    if out_path.exists() and not args.overwrite:
        raise PathError(f"Option --out {out_path} already exists; pass --overwrite to replace it or choose another name.")
    fcn = to_fully_convolutional(trained.net)
    _, meta = load_checkpoint(trained.path)
    meta = dict(meta)
    meta["net"] = {"arch": to_pattern(fcn)}
    meta["converted_from"] = str(trained.path)
    # the checkpoint is read back by re-parsing the pattern, which names layers afresh:
    # store each tensor under the name the re-parsed net gives the same position
    rebuilt = build_model_from_description(meta["net"], trained.input_shape, len(trained.classes))
    rebuilt.build(trained.input_shape)
    tensors = {}
    for (_, p, _), (name, q, _) in zip(fcn.named_parameters(trainable_only=False), rebuilt.named_parameters(trainable_only=False), strict=True):
        if p.shape != q.shape:
            raise ConfigError(f"convert: the converted net does not round-trip through its pattern ({name}: {p.shape} vs {q.shape}).")
        tensors[f"param/{name}"] = np.asarray(p)
    for (_, v), (name, _) in zip(fcn.named_state(), rebuilt.named_state(), strict=True):
        tensors[f"state/{name}"] = np.asarray(v)
    out = save_checkpoint(args.out, tensors, meta)
    converted = [n.name for n in fcn.nodes if n.layer.kind == "CONV" and n.name in {m.name for m in trained.net.nodes if m.layer.kind == "FC"}]
    print(f"converted {', '.join(converted)} to CONV layers; wrote {out}")
    print(f"architecture: {meta['net']['arch']}")
    return 0
