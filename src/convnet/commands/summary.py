"""``convnet summary MODEL|PATTERN``: the layer table, the memory needed and the sizing lint."""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import BudgetError, ConfigError, GeometryError
from ..train.optimizers import OPTIMIZERS
from ._sizes import parse_hwc

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
  convnet summary resnet50 --batch 256 --ranks 8,64 --bandwidth 25Gb/s   # does data parallelism pay?
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
                   choices=list(OPTIMIZERS),
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
    g = p.add_argument_group("data parallel model (docs/distributed.md): --batch is then the global batch")
    g.add_argument("--ranks", metavar="N[,N...]", help="estimate a data-parallel step on N ranks: gradient bytes, "
                                                      "ring-allreduce time, compute time, scaling efficiency")
    g.add_argument("--bandwidth", metavar="RATE", default=None,
                   help="link bandwidth, e.g. 25Gb/s (bits) or 3GB/s (bytes) (default: 25Gb/s)")
    g.add_argument("--latency", metavar="TIME", default=None, help="time per message, e.g. 5us (default: 5us)")
    g.add_argument("--flops-per-s", metavar="RATE", default=None,
                   help="FLOP/s one rank sustains in training, e.g. 100G or 20T (default: 100G)")
    p.set_defaults(func=run)
    return p


def _scaling(args, net):
    """The scaling rows for --ranks (None without it); options that need --ranks are refused alone."""
    from ..analysis.scaling import (DEFAULT_BANDWIDTH, DEFAULT_FLOPS_PER_S, DEFAULT_LATENCY, estimate_scaling,
                                    parse_bandwidth, parse_duration, parse_rate)

    if args.ranks is None:
        given = [o for o, v in (("--bandwidth", args.bandwidth), ("--latency", args.latency),
                                ("--flops-per-s", args.flops_per_s)) if v is not None]
        if given:
            raise ConfigError(f"Option {given[0]} describes a data-parallel step; give it with --ranks N.")
        return None
    try:
        ranks = [int(r) for r in args.ranks.split(",")]
    except ValueError:
        ranks = []
    if not ranks or min(ranks) < 1:
        raise ConfigError(f"Option --ranks must be positive integers such as 8 or 8,64,512; received {args.ranks!r}.")
    rates = {"bandwidth": parse_bandwidth(args.bandwidth or DEFAULT_BANDWIDTH),
             "latency": parse_duration(args.latency or DEFAULT_LATENCY),
             "flops_per_s": parse_rate(args.flops_per_s or DEFAULT_FLOPS_PER_S)}
    rows = [estimate_scaling(net, ranks=n, batch=args.batch, dtype=args.dtype, **rates) for n in ranks]
    return rows, rates


def _list() -> int:
    from .. import zoo

    width = max(len(n) for n in zoo.names())
    for name in zoo.names():
        print(f"{name:<{width}}  {zoo.describe(name)}")
    return 0


def run(args) -> int:
    from ..analysis import MemoryModel, lint, parse_bytes, summarize
    from ..analysis.explain import explain
    from ..analysis.memory import format_bytes

    if args.list:
        return _list()
    if not args.model:
        raise ConfigError("Give a MODEL (a zoo name, see --list) or a PATTERN to summarize.")
    if args.batch < 1:
        raise ConfigError(f"Option --batch must be a positive integer; received {args.batch}.")
    input_shape = parse_hwc(args.input) if args.input else None
    from ..models import load_model

    net = load_model(args.model, input_shape=input_shape, classes=args.classes, width=args.width)
    if net.input_shape is None:
        raise ConfigError(f"The pattern {args.model!r} has no INPUT[HxWxC]; start it with one or pass --input.")
    try:
        summary = summarize(net, batch=args.batch, dtype=args.dtype)
    except GeometryError as exc:
        if input_shape is None or exc.reason is None or "->" in args.model:
            raise
        own = load_model(args.model, classes=args.classes, width=args.width).input_shape
        size = "x".join(map(str, own)) if own else "its own size"
        raise GeometryError(f"{exc.reason} {args.model} does not tile a {args.input} input; it runs at {size} "
                            f"(give an --input where every layer's windows fit).") from None
    explanation = explain(net, batch=args.batch, dtype=args.dtype) if args.explain else None
    scaling = _scaling(args, net)
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
        if scaling is not None:
            from ..analysis.scaling import scaling_table

            text = scaling_table(scaling[0], **scaling[1])
            print("\n" + (text if args.format == "table" else "```\n" + text + "\n```"), file=out)
    elif args.format == "json":
        d = summary.as_dict()
        d["memory"] = est.as_dict()
        if budget:
            d["budget"] = budget
        d["warnings"] = [{"rule": w.rule, "layer": w.layer, "message": w.message} for w in warnings]
        if explanation is not None:
            d["algorithms"] = explanation.as_dict()
        if scaling is not None:
            d["scaling"] = {"assumptions": scaling[1], "rows": [r.as_dict() for r in scaling[0]]}
        print(json.dumps(d, indent=2), file=out)
    else:
        out.write(explanation.to_csv() if explanation is not None else summary.to_csv())
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
    if budget and not budget["fits"]:
        return BudgetError.exit_code
    return 0
