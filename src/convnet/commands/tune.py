"""``convnet tune MODEL``: time each CONV layer's algorithms on this machine and remember the winners."""
from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError

DESCRIPTION = """\
Time every algorithm that applies to each distinct CONV layer shape of MODEL (forward and
backward, a few runs each) and write the winners to the tuning cache,
$CONVNET_CACHE_DIR/tuning.json (default ~/.cache/convnet/tuning.json), keyed by this
machine's CPU, NumPy/numba versions and threads.  Later runs with the same batch size read it
(CONVNET_TUNE=0 switches it off); `convnet summary MODEL --explain` shows which layers it decides.
  convnet tune resnet20_cifar --batch 64
  convnet tune vgg16 --batch 1 --dtype float64
"""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("tune", help="time the convolution algorithms of a model on this machine and cache "
                                           "the fastest", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL|PATTERN|CHECKPOINT",
                   help="a zoo model name, a pattern string, or a checkpoint (.safetensors or run folder)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default: 1)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="value type (default: float32)")
    p.add_argument("--input", metavar="HxWxC", help="input shape (default: the model's own)")
    p.add_argument("--repeats", type=int, default=3, metavar="R", help="timed runs per algorithm (default: 3)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..layers.conv import Conv2D
    from ..models import load_model
    from ..ops.fast import tuner, tuning
    from ._sizes import parse_hwc

    if args.batch < 1:
        raise ConfigError(f"Option --batch must be a positive integer; received {args.batch}.")
    if args.repeats < 1:
        raise ConfigError(f"Option --repeats must be a positive integer; received {args.repeats}.")
    if not tuning.enabled():
        raise ConfigError("Tuning is switched off by CONVNET_TUNE=0; unset it to fill the tuning cache.")
    input_shape = parse_hwc(args.input) if args.input else None
    net = load_model(args.model, input_shape=input_shape)
    if net.input_shape is None:
        raise ConfigError(f"The pattern {args.model!r} has no INPUT[HxWxC]; start it with one or pass --input.")
    shapes = net.shapes(None)
    specs = []
    for node in net.nodes:
        layer = node.layer
        if isinstance(layer, Conv2D) and layer.algorithm == "auto":
            in_shape, out_shape = shapes[node.inputs[0]], shapes[node.name]
            kh, kw = layer.kernel_size
            specs.append((node.name, (args.batch, *in_shape), (kh, kw, in_shape[2] // layer.groups, out_shape[2]),
                          dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                               groups=layer.groups, fit=layer.fit, workspace_bytes=layer.workspace_bytes)))
    if not specs:
        raise ConfigError(f"Model {args.model!r} has no CONV layer with algorithm 'auto' to tune.")
    results = tuner.tune_shapes(specs, args.dtype, repeats=args.repeats)
    print(_table(results, net.name or args.model, args.batch, args.dtype))
    print(f"\nWrote {len(results)} shapes to {tuning.cache_path()}")
    sys.stdout.flush()
    return 0


def _table(results, name, batch, dtype) -> str:
    def dims(t):
        return "×".join(str(d) for d in t)

    rows = [["layers", "in", "kernel", "cost model", "tuned", "times (ms, forward+backward)"]]
    for t in results:
        layers = t.layers[0] + (f" +{len(t.layers) - 1}" if len(t.layers) > 1 else "")
        times = ", ".join(f"{a} {ms:.2f}" + ("*" if a == t.algorithm else "")
                          for a, ms in sorted(t.times_ms.items(), key=lambda kv: kv[1]))
        marker = t.algorithm if t.algorithm == t.cost_model else f"{t.algorithm} (changed)"
        rows.append([layers, dims(t.x_shape[1:]), f"{dims(t.w_shape[:2])}/{t.stride[0]} → {t.w_shape[3]}",
                     t.cost_model, marker, times])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"Tuned convolution algorithms of {name} (batch {batch}, {dtype}); * = winner"]
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
