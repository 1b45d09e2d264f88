"""``convnet demo conv|im2col|pool|fc-conv|backward``: one self-contained HTML page of the notes'
pictures, moving, with the engine's own numbers."""
from __future__ import annotations

import argparse

DESCRIPTION = """\
Write one HTML page (no network, no server: open it from disk) that shows a picture of the
notes with numbers computed by convnet's own operations:

  conv      the convolution demo: input volume, filters, output; play, pause, step, and
            click an output cell for its window, its filter and the dot product written out
  im2col    every window stretched into a row, the filters into columns, one matrix product
            (and the notes' 227x227x3 / 11x11 / stride 4 -> 363x3025 arithmetic)
  pool      max pooling with its switches, and where the gradient goes in backward
  fc-conv   an FC layer and its CONV twin give the same numbers; the twin slides on a larger input
  backward  the backward pass of a convolution is a convolution with flipped filters

Defaults are the notes' (conv: a 5x5x3 input, pad 1, two 3x3x3 filters at stride 2 -> 3x3x2).
Sizes, kernels, strides, paddings and dilations take N or HxW (height first), e.g.
  convnet demo conv --out demo-conv.html
  convnet demo conv --size 7 --kernel 3x2 --stride 1 --padding 0 --seed 3 --out small.html
  convnet demo pool --size 6 --kernel 3 --stride 3 --out pool.html
"""

DEMOS = ("conv", "im2col", "pool", "fc-conv", "backward")
TITLES = {
    "conv": ("Convolution demo", "The notes' convolution demo: each output cell is the dot product of one "
                                 "window of the padded input with one filter, plus its bias."),
    "im2col": ("im2col: a convolution as one matrix product", "Every window is stretched into a row, every "
               "filter into a column; one GEMM computes every dot product at once."),
    "pool": ("Max pooling and its switches", "Each output is its window's maximum; the switch remembers where "
             "it was, and backward routes the gradient there."),
    "fc-conv": ("FC → CONV", "An FC layer that looks at an H×W×C volume is a CONV layer with H×W filters: the "
                "same weights, reshaped, the same numbers."),
    "backward": ("Backward of a CONV is a CONV", "The data gradient is the upstream gradient convolved with the "
                 "spatially flipped filters."),
}


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="write an HTML page of one of the notes' pictures (conv, im2col, pool, ...)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("demo", choices=DEMOS, metavar="DEMO", help="one of: " + ", ".join(DEMOS))
    p.add_argument("--size", metavar="N|HxW", help="input height and width")
    p.add_argument("--depth", type=int, metavar="C", help="input channels")
    p.add_argument("--filters", type=int, metavar="K", help="number of filters (fc-conv: FC neurons)")
    p.add_argument("--kernel", metavar="N|HxW", help="filter (or pooling window) height and width")
    p.add_argument("--stride", metavar="N|HxW", help="stride")
    p.add_argument("--padding", metavar="N|HxW", help="zero padding on each side")
    p.add_argument("--dilation", metavar="N|HxW", help="dilation of the filter taps")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the random integers (default: 0)")
    p.add_argument("--out", metavar="FILE.html", help="the page to write (default: demo-DEMO.html)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..errors import ConfigError
    from ..pages import demo_payload, render_page
    from ..paths import output_file
    from ._sizes import parse_pair

    out = output_file(args.out or f"demo-{args.demo}.html", what="Option --out")
    options = {name: parse_pair(getattr(args, name), option=f"--{name}", minimum=0 if name == "padding" else 1)
               for name in ("size", "kernel", "stride", "padding", "dilation") if getattr(args, name) is not None}
    for name in ("depth", "filters"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.seed is not None:
        if args.seed < 0:
            raise ConfigError(f"Option --seed must be a non-negative integer; received {args.seed}.")
        options["seed"] = args.seed
    unused = {"pool": ("filters", "dilation"), "fc-conv": ("kernel", "stride", "padding", "dilation")}.get(args.demo, ())
    for name in unused:
        if name in options:
            raise ConfigError(f"Option --{name} does not apply to the {args.demo} demo.")
    payload = demo_payload(args.demo, **options)
    title, lead = TITLES[args.demo]
    page = render_page(title=title, lead=lead, payload=payload, script=f"demo_{args.demo.replace('-', '_')}.js",
                       command="convnet " + " ".join(args.argv))
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({_size(len(page.encode('utf-8')))}): the {args.demo} demo; open it in a browser")
    return 0


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"
