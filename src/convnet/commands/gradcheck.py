"""``convnet gradcheck``: a numerical gradient check of a whole (small) network."""
from __future__ import annotations

import argparse

import numpy as np

from ._sizes import parse_hwc

GRADCHECK_HELP = """\
Check a whole network's backward pass against centred finite differences, in float64:
random inputs and labels, softmax cross-entropy on top, every parameter tensor and the
input checked along random directions (u·∇ vs (L(x+εu) - L(x-εu)) / 2ε, with ε = 1e-6 and
1e-7, keeping the better: a ReLU kink crossed at one step size is rarely crossed at both).

  convnet gradcheck lenet5
  convnet gradcheck "INPUT[12x12x2] -> CONV3-4 -> BN -> RELU -> POOL2 -> FC-5"
  convnet gradcheck resnet20_cifar --input 16x16x3 --batch 2
Exit status 0 when every relative error is below --tolerance, 9 (a check that failed)
otherwise.
"""


def register(sub) -> None:
    p = sub.add_parser("gradcheck", help="numerical gradient check of a whole net", description=GRADCHECK_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a zoo name, a layer pattern or a checkpoint (its architecture, new weights)")
    p.add_argument("--input", default=None, help="input size HxWxC (default: the net's own)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--directions", type=int, default=3, help="random directions per tensor (default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=1e-6, help="largest relative error accepted (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_gradcheck)


def _to_float64(net) -> None:
    for layer in net.layers:
        layer.dtype = np.dtype(np.float64)
        for d in (layer.params, layer.grads, layer.state):
            for k, v in d.items():
                d[k] = v.astype(np.float64)


def gradcheck_net(net, input_shape, *, batch=2, directions=3, seed=0, eps=1e-6):
    """Relative errors ``{tensor name: max over directions}`` of a float64 net (dropout off)."""
    from ..ops.losses import (
        softmax_cross_entropy_backward,
        softmax_cross_entropy_forward,
    )

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *input_shape))
    scores = net.forward(x, train=False)
    y = rng.integers(0, scores.shape[1], size=batch)

    def loss_at(x_):
        return softmax_cross_entropy_forward(net.forward(x_, train=False, keep_cache=False), y)[0]

    loss, cache = softmax_cross_entropy_forward(net.forward(x, train=False), y)
    dx = net.backward(softmax_cross_entropy_backward(1.0, cache))
    errors = {}
    # the owner layer of each parameter: told after every edit in place (weights_changed), so that
    # nothing made from the old values (a CONV's prepacked transforms) is used again
    tensors = [("input", x, dx, None)] + [(e[0], e[1], e[2].copy(), getattr(e, "owner", None))
                                          for e in net.named_parameters()]
    for name, arr, grad, owner in tensors:
        changed = owner.weights_changed if owner is not None else (lambda: None)
        worst = 0.0
        for _ in range(directions):
            u = rng.standard_normal(arr.shape)
            analytic = float((grad * u).sum())
            best = np.inf
            for step in (eps, eps / 10):  # a ReLU kink crossed at one step size is rarely crossed at both
                arr += step * u
                changed()
                plus = loss_at(x)
                arr -= 2 * step * u
                changed()
                minus = loss_at(x)
                arr += step * u
                changed()
                numeric = (plus - minus) / (2 * step)
                best = min(best, abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1e-8))
            worst = max(worst, best)
        errors[name] = worst
    return errors


def run_gradcheck(args) -> int:
    from ..errors import CHECK_FAILED_EXIT, ConfigError

    for name, value in (("--directions", args.directions), ("--batch", args.batch)):
        if value < 1:
            raise ConfigError(f"Option {name} must be a positive integer (with none, nothing would be checked); "
                              f"received {value}.")
    if not args.tolerance > 0:
        raise ConfigError(f"Option --tolerance must be a positive number; received {args.tolerance}.")
    input_shape = None if args.input is None else parse_hwc(args.input)
    from ..models import load_model

    net = load_model(args.model, input_shape=input_shape)
    shape = input_shape or net.input_shape
    net.build(shape, rng=np.random.default_rng(args.seed))
    _to_float64(net)
    errors = gradcheck_net(net, shape, batch=args.batch, directions=args.directions, seed=args.seed)
    bad = {k: v for k, v in errors.items() if v > args.tolerance}
    for name, err in errors.items():
        print(f"{'FAIL' if name in bad else 'ok  '} {name:<40} relative error {err:.2e}")
    print(f"{len(errors) - len(bad)} of {len(errors)} tensors within {args.tolerance:g}"
          f" ({net.name or args.model}, input {'x'.join(map(str, shape))}, batch {args.batch}, float64)")
    return CHECK_FAILED_EXIT if bad else 0
