"""``convnet convert``: net surgery (FC → CONV) and the formats in and out (ONNX, PyTorch weights)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CONVERT_HELP = """\
Convert a net between forms; the output is never an existing file unless --overwrite.

  convnet convert CKPT --to-fully-conv --out FCN.safetensors
        # the notes' net surgery: every FC layer becomes the equivalent CONV layer
  convnet convert CKPT --to-onnx model.onnx
        # ONNX (NCHW input "input" with a symbolic batch, raw images in [0, 1]: the
        # checkpoint's normalisation is written in front as a per-channel Mul/Add)
  convnet convert model.onnx --out ckpt.safetensors
        # an ONNX model as a convnet checkpoint (evaluate, predict, summary, --init-from)
  convnet convert weights.pth --model resnet18 --out ckpt.safetensors [--classes 1000]
        # torchvision-named PyTorch weights (state dict .pth, or safetensors) into a zoo net

CKPT is a .safetensors checkpoint or a run folder.
"""


def register(sub) -> None:
    c = sub.add_parser("convert", help="FC->CONV surgery; checkpoints to and from ONNX; PyTorch weights",
                       description=CONVERT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("source", metavar="SOURCE", help="a checkpoint or run folder, an .onnx model, or a weights file")
    what = c.add_mutually_exclusive_group()
    what.add_argument("--to-fully-conv", action="store_true", help="convert FC layers to CONV layers (needs --out)")
    what.add_argument("--to-onnx", metavar="ONNX", default=None, help="write the checkpoint as this ONNX model")
    c.add_argument("--out", default=None, help="the checkpoint to write (.safetensors)")
    c.add_argument("--model", default=None, help="with a weights file: the zoo net they belong to (torchvision names)")
    c.add_argument("--classes", type=int, default=None, help="with --model: number of classes (default: the zoo's)")
    c.add_argument("--opset", type=int, default=17, help="with --to-onnx: the ONNX opset (default: %(default)s)")
    c.add_argument("--overwrite", action="store_true", help="replace the output if it exists (never the input)")
    c.set_defaults(func=run_convert)


def run_convert(args) -> int:
    from ..errors import ConfigError, PathError
    from ..models import is_onnx
    from ..paths import output_file

    target = args.to_onnx if args.to_onnx else args.out
    if target is None:
        raise ConfigError("Give the output: --out CKPT.safetensors (or --to-onnx MODEL.onnx).")
    if args.to_onnx and args.out:
        raise ConfigError("Give one output: --to-onnx writes the ONNX model, --out a checkpoint.")
    out_path = output_file(target, what="Option --to-onnx" if args.to_onnx else "Option --out")
    source = Path(args.source)
    if out_path.exists() and source.exists() and out_path.resolve() == source.resolve():
        raise PathError(f"The output {out_path} is the file being converted; write the converted one elsewhere.")
    if out_path.exists() and not args.overwrite:
        raise PathError(f"The output {out_path} already exists; pass --overwrite to replace it or choose another name.")
    if args.model is not None or args.classes is not None:
        if args.to_fully_conv or args.to_onnx:
            raise ConfigError("Option --model converts a weights file into a checkpoint; it takes only --out.")
        return _weights(args, out_path)
    if is_onnx(args.source):
        if args.to_fully_conv or args.to_onnx:
            raise ConfigError(f"{args.source} is an ONNX model: convert it with --out CKPT.safetensors first.")
        return _from_onnx(args, out_path)
    if args.to_onnx:
        return _to_onnx(args, out_path)
    if args.to_fully_conv:
        return _fully_conv(args, out_path)
    raise ConfigError("Say what to convert to: --to-fully-conv, --to-onnx ONNX, or --model NAME for a weights file.")


def _to_onnx(args, out_path) -> int:
    from ..interop.onnx import save
    from ..train.run import TrainedNet

    trained = TrainedNet(args.source)
    net = with_normalization(trained.net, trained.normalizer)
    save(net, out_path, opset=args.opset)
    print(f"wrote {out_path} (opset {args.opset}; input NCHW raw images in [0, 1], "
          f"{' '.join(map(str, trained.input_shape))} HWC per sample; classes {', '.join(trained.classes[:10])}"
          f"{' ...' if len(trained.classes) > 10 else ''})")
    return 0


def with_normalization(net, normalizer):
    """A copy of ``net`` that takes raw images: a ChannelAffine ``(x - mean) / std`` node in front."""
    import copy

    from ..graph import INPUT
    from ..layers import ChannelAffine
    from ..net import Net

    std = np.where(normalizer.std < 1e-8, 1.0, normalizer.std)
    if np.all(normalizer.mean == 0) and np.all(std == 1):
        return net
    out = Net(name=net.name, input_shape=net.input_shape)
    first = out.add(ChannelAffine(dtype=net.layers[0].dtype), name="normalize")
    for node in net.nodes:
        inputs = [first if i == INPUT else i for i in node.inputs]
        out.add(copy.deepcopy(node.layer), inputs=inputs if len(inputs) > 1 else inputs[0], name=node.name)
    out.build(net.input_shape)
    affine = out["normalize"]
    affine.params["scale"][...] = 1.0 / std
    affine.params["shift"][...] = -normalizer.mean / std
    return out


def _from_onnx(args, out_path) -> int:
    from ..models import ONNX_TENSOR, load_onnx
    from ..train.run import save_net_checkpoint

    net = load_onnx(args.source)
    classes = [str(i) for i in range(int(np.prod(net.output_shape())))]
    data = np.frombuffer(Path(args.source).read_bytes(), dtype=np.uint8)
    out = save_net_checkpoint(out_path, net, description={"onnx": ONNX_TENSOR}, classes=classes,
                              extra_tensors={ONNX_TENSOR: data}, source=args.source)
    print(f"wrote {out} ({len(net.nodes)} layers, input {'x'.join(map(str, net.input_shape))}, "
          f"{len(classes)} classes named 0..{len(classes) - 1}, no normalisation)")
    return 0


def _weights(args, out_path) -> int:
    from .. import zoo
    from ..errors import ConfigError
    from ..interop.torch import load_state_dict
    from ..train.run import save_net_checkpoint

    if args.model is None:
        raise ConfigError("Option --classes applies with --model NAME (a weights file into a zoo net).")
    name = zoo.canonical(args.model)
    kwargs = {} if args.classes is None else {"num_classes": args.classes}
    net = zoo.get(name, **kwargs)
    net.build(net.input_shape, rng=np.random.default_rng(0))
    load_state_dict(net, args.source, ignore=("aux1.", "aux2."))
    classes = [str(i) for i in range(int(np.prod(net.output_shape())))]
    out = save_net_checkpoint(out_path, net, description={"model": name, "model_args": kwargs}, classes=classes,
                              source=args.source)
    print(f"wrote {out} ({name} with the weights of {args.source}; {len(classes)} classes)")
    return 0


def _fully_conv(args, out_path) -> int:
    from ..analysis.surgery import to_fully_convolutional
    from ..errors import ConfigError
    from ..pattern import to_pattern
    from ..train.checkpoint import load_checkpoint, save_checkpoint
    from ..train.model import build_model_from_description
    from ..train.run import TrainedNet

    if args.out is None:
        raise ConfigError("Option --to-fully-conv writes a checkpoint: give --out FCN.safetensors.")
    trained = TrainedNet(args.source)
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
    for (_, p, _), (name, q, _) in zip(fcn.named_parameters(trainable_only=False),
                                       rebuilt.named_parameters(trainable_only=False), strict=True):
        if p.shape != q.shape:
            raise ConfigError(f"convert: the converted net does not round-trip through its pattern "
                              f"({name}: {p.shape} vs {q.shape}).")
        tensors[f"param/{name}"] = np.asarray(p)
    for (_, v), (name, _) in zip(fcn.named_state(), rebuilt.named_state(), strict=True):
        tensors[f"state/{name}"] = np.asarray(v)
    out = save_checkpoint(out_path, tensors, meta)
    was_fc = {m.name for m in trained.net.nodes if m.layer.kind == "FC"}
    converted = [n.name for n in fcn.nodes if n.layer.kind == "CONV" and n.name in was_fc]
    print(f"converted {', '.join(converted)} to CONV layers; wrote {out}")
    print(f"architecture: {meta['net']['arch']}")
    return 0
