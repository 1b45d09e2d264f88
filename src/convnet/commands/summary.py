"""``convnet summary MODEL|PATTERN``: the layer table, the memory needed and the sizing lint."""
from __future__ import annotations

import argparse
import json
import re
import sys

from ..errors import BudgetError, ConfigError, GeometryError, PatternSyntaxError

DESCRIPTION = """\
Print one row per layer: output shape (H×W×D), activations, weights, biases,
parameters, multiply-adds, FLOPs forward and backward, receptive field and
jump; then the memory a step needs (activations, parameters with gradients and
optimizer state, data batch) and the notes' sizing rules of thumb.

MODEL is a zoo name (see --list; any case), a checkpoint (.safetensors file or run folder)
or a pattern in the notes' notation, e.g.
  convnet summary vgg16
  convnet summary resnet50 --batch 32 --optimizer adam --budget 12GB
  convnet summary "INPUT[32x32x3] -> [CONV3-32 -> RELU -> POOL2]*2 -> FC-10" --format json
  convnet summary resnet20_cifar --batch 64 --explain
"""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "summary",
        help="layer table, memory estimate and sizing lint of a model or pattern",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", metavar="MODEL|PATTERN|CHECKPOINT",
                   help="a zoo model name, a pattern string, or a checkpoint (.safetensors or run folder)")
    p.add_argument("--list", action="store_true", help="list the zoo models and exit")
    p.add_argument("--input", metavar="HxWxC", help="input shape (default: the model's own, e.g. 224x224x3)")
    p.add_argument("--classes", type=int, metavar="N", help="number of classes of a zoo model")
    p.add_argument("--width", type=float, metavar="W", help="channel-width multiplier of a zoo model")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default: 1)")
    p.add_argument("--format", choices=("table", "markdown", "json", "csv"), default="table",
                   help="output format (default: table)")
    p.add_argument("--optimizer", default="sgd",
                   choices=("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"),
                   help="optimizer whose state is counted (default: sgd)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="value type (default: float32)")
    p.add_argument("--inference", action="store_true", help="memory of inference (predict) instead of a training step")
    p.add_argument("--budget", metavar="SIZE",
                   help="memory budget such as 12GB or 512MB (1 GB = 1024³ bytes): report whether --batch fits "
                        "and the largest batch that does; exit status 5 when --batch does not fit")
    p.add_argument("--no-lint", action="store_true", help="do not check the sizing rules of thumb")
    p.add_argument("--explain", action="store_true",
                   help="also show each CONV layer's algorithm (im2col, direct, Winograd, 1x1 GEMM) for --batch, "
                        "its multiplies and workspace (with --format csv: that table instead of the layer table)")
    p.set_defaults(func=run)
    return p


def _shape(text: str) -> tuple[int, ...]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX×,]\s*(\d+)\s*[xX×,]\s*(\d+)\s*|\s*(\d+)\s*", text)
    if m is None:
        raise ConfigError(f"Option --input must be HxWxC such as 224x224x3 (or D); received {text!r}.")
    dims = tuple(int(g) for g in m.groups() if g is not None)
    if any(d < 1 for d in dims):
        raise ConfigError(f"Option --input must have positive sizes; received {text!r}.")
    return dims


def load_model(spec: str, *, input_shape=None, classes=None, width=None):
    """A zoo model by name, else a pattern; returns an unbuilt Net (shared by other subcommands)."""
    from .. import zoo
    from ..pattern import parse

    if _is_checkpoint(spec):
        return _from_checkpoint(spec, input_shape, classes, width)
    try:
        spec_name = zoo.canonical(spec)
    except ConfigError:
        spec_name = None
    if spec_name is not None:
        spec = spec_name
        kwargs = {}
        if input_shape is not None:
            kwargs["input_shape"] = input_shape
        if classes is not None:
            kwargs["num_classes"] = classes
        if width is not None:
            kwargs["width"] = width
        return zoo.get(spec, **kwargs)
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", spec.strip()) and "->" not in spec:
        # a bare word that is not a model: a typo of a name is likelier than a one-layer pattern
        try:
            return _pattern(parse, spec, input_shape, classes, width)
        except PatternSyntaxError:
            zoo.get(spec)  # raises "Unknown model ... did you mean"
            raise
    return _pattern(parse, spec, input_shape, classes, width)


def _is_checkpoint(spec: str) -> bool:
    from pathlib import Path

    return spec.strip().endswith(".safetensors") or ("->" not in spec and Path(spec).is_dir())


def _from_checkpoint(spec, input_shape, classes, width):
    """The architecture a training checkpoint (file or run folder) records, unbuilt (weights are not read)."""
    from ..train.checkpoint import load_checkpoint
    from ..train.model import build_model_from_description
    from ..train.run import resolve_checkpoint

    if classes is not None or width is not None:
        raise ConfigError("Options --classes and --width apply to zoo models; a checkpoint records its own sizes.")
    path = resolve_checkpoint(spec)
    _, meta = load_checkpoint(path)
    try:
        shape, classes, desc = tuple(meta["input_shape"]), meta["classes"], meta["net"]
    except (KeyError, TypeError) as exc:
        from ..errors import CheckpointError

        raise CheckpointError(f"{path} is not a convnet training checkpoint (missing {exc}).") from None
    net = build_model_from_description(desc, shape, len(classes))
    if input_shape is not None:
        net.input_shape = input_shape
    if not net.name:
        net.name = path.name
    return net


def _pattern(parse, spec, input_shape, classes, width):
    if classes is not None or width is not None:
        raise ConfigError("Options --classes and --width apply to zoo models; a pattern writes its own sizes.")
    net = parse(spec)
    if input_shape is not None:
        net.input_shape = input_shape
    if net.input_shape is None:
        raise ConfigError(f"The pattern {spec!r} has no INPUT[HxWxC]; start it with one or pass --input.")
    return net


def _list() -> int:
    from .. import zoo

    width = max(len(n) for n in zoo.names())
    for name in zoo.names():
        print(f"{name:<{width}}  {zoo.describe(name)}")
    return 0


def run(args) -> int:
    from ..analysis import MemoryModel, lint, parse_bytes
    from ..analysis.memory import format_bytes

    if args.list:
        return _list()
    if not args.model:
        raise ConfigError("Give a MODEL (a zoo name, see --list) or a PATTERN to summarize.")
    if args.batch < 1:
        raise ConfigError(f"Option --batch must be a positive integer; received {args.batch}.")
    input_shape = _shape(args.input) if args.input else None
    net = load_model(args.model, input_shape=input_shape, classes=args.classes, width=args.width)
    try:
        summary = net.summary(batch=args.batch, dtype=args.dtype)
    except GeometryError as exc:
        if input_shape is None or exc.reason is None or "->" in args.model:
            raise
        own = load_model(args.model, classes=args.classes, width=args.width).input_shape
        size = "x".join(map(str, own)) if own else "its own size"
        raise GeometryError(f"{exc.reason} {args.model} does not tile a {args.input} input; it runs at {size} "
                            f"(give an --input where every layer's windows fit).") from None
    explanation = net.explain(batch=args.batch, dtype=args.dtype) if args.explain else None
    model = MemoryModel(net, optimizer=args.optimizer, dtype=args.dtype, train=not args.inference)
    est = model.estimate(args.batch)
    warnings = [] if args.no_lint else lint(net)
    budget = None
    if args.budget:
        cap = parse_bytes(args.budget)
        try:
            largest = model.max_batch(cap)
        except BudgetError:
            largest = 0
        budget = {"budget": cap, "fits": est.total <= cap, "max_batch": largest}

    out = sys.stdout
    if args.format in ("table", "markdown"):
        print(summary.to_text() if args.format == "table" else summary.to_markdown(), file=out)
        print(file=out)
        report = est.report()
        print(report if args.format == "table" else "```\n" + report + "\n```", file=out)
        if budget:
            verdict = "fits" if budget["fits"] else "does NOT fit"
            more = (f"largest batch that fits: {budget['max_batch']}" if budget["max_batch"]
                    else "not even a batch of 1 fits")
            print(f"\nBatch {args.batch} {verdict} in {format_bytes(budget['budget'])}; {more}.", file=out)
        if warnings:
            print("\nSizing warnings (the notes' rules of thumb):", file=out)
            for w in warnings:
                print(f"  {w}", file=out)
        if explanation is not None:
            print(file=out)
            print(explanation.to_text() if args.format == "table" else explanation.to_markdown(), file=out)
    elif args.format == "json":
        d = summary.as_dict()
        d["memory"] = est.as_dict()
        if budget:
            d["budget"] = budget
        d["warnings"] = [{"rule": w.rule, "layer": w.layer, "message": w.message} for w in warnings]
        if explanation is not None:
            d["algorithms"] = explanation.as_dict()
        print(json.dumps(d, indent=2), file=out)
    else:
        out.write(explanation.to_csv() if explanation is not None else summary.to_csv())
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
    if budget and not budget["fits"]:
        return BudgetError.exit_code
    return 0
