"""Convolution layers: VGG16's and ResNet-18's layers, forward and forward+backward.

Ours is :func:`convnet.ops.conv2d_forward` / :func:`~convnet.ops.conv2d_backward`
with ``algorithm="auto"`` (float32, NHWC/HWIO); for 3×3 stride-1 layers every
algorithm (``im2col``, ``winograd4``, ``winograd2``, ``direct`` where it has a kernel, ``smallmap`` on maps of
at most 3×3 pixels) is timed too and kept in
the record's ``algorithms`` field.  Every record names ``auto``'s pick (``algorithm``;
``algorithm_source``: "tuned" or "cost model") and the cost model's own
(``cost_model_algorithm``).  "fwd+bwd" is the forward pass followed by
the backward pass that computes ``dx``, ``dw`` (and ``db`` where the layer has
a bias), from a random upstream gradient.

GFLOP/s counts the direct algorithm's work, ``2·N·Ho·Wo·K·kh·kw·C`` for the
forward and three times that for forward+backward, whatever algorithm ran
(so Winograd can exceed the sgemm roofline).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import peers
from .timing import measure_group

ALGOS = ("im2col", "winograd4", "winograd2", "direct", "smallmap")


def _applicable(spec: "ConvSpec") -> tuple:
    """The algorithms a 3×3 stride-1 layer can run here (``direct``: narrow layers, numba on;
    ``smallmap``: maps of at most 3×3, where most taps read the padding)."""
    from convnet.ops.fast import direct_applicable

    return tuple(a for a in ALGOS if (a != "direct" or direct_applicable(spec.k, 1)) and (a != "smallmap" or spec.h <= 3))


@dataclass(frozen=True)
class ConvSpec:
    n: int
    h: int
    c: int
    k: int
    kernel: int = 3
    stride: int = 1
    bias: bool = True
    suites: tuple = ()
    quick: bool = False

    @property
    def pad(self) -> int:
        return (self.kernel - 1) // 2

    @property
    def out(self) -> int:
        return (self.h + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def is_3x3s1(self) -> bool:
        return self.kernel == 3 and self.stride == 1

    def flops(self) -> float:
        return 2.0 * self.n * self.out * self.out * self.k * self.kernel * self.kernel * self.c

    def label(self) -> str:
        return (f"conv {'+'.join(self.suites)} {self.kernel}x{self.kernel}/{self.stride} "
                f"{self.h}x{self.h}x{self.c}->{self.k} N={self.n}")

    def tags(self) -> list[str]:
        """Targets this case counts for: the issue's suites only (VGG16, ResNet-18), not ResNet-20's
        narrow layers (measured to show the direct algorithm and the training step's parts)."""
        t = []
        if self.suites == ("resnet20-cifar@32",):
            return t
        if self.is_3x3s1 and self.c >= 128 and self.k >= 128:
            t.append("3x3s1_ck_ge_128")
        if self.is_3x3s1 and self.c == 64 and self.k == 64:
            t.append("3x3s1_ck_64")
        return t


def _suite(name, n, layers, bias, quick=()):
    return [ConvSpec(n, h, c, k, kernel, stride, bias, (name,), (h, c, k, kernel, stride) in quick)
            for (h, c, k, kernel, stride) in layers]


def specs() -> list[ConvSpec]:
    """Every distinct layer of the four suites (shared shapes measured once, named by every suite)."""
    vgg = [(224, 3, 64), (224, 64, 64), (112, 64, 128), (112, 128, 128), (56, 128, 256), (56, 256, 256),
           (28, 256, 512), (28, 512, 512), (14, 512, 512)]
    vgg32 = [(32, 3, 64), (32, 64, 64), (16, 64, 128), (16, 128, 128), (8, 128, 256), (8, 256, 256),
             (4, 256, 512), (4, 512, 512), (2, 512, 512)]
    r224 = [(224, 3, 64, 7, 2), (56, 64, 64, 3, 1), (56, 64, 128, 3, 2), (56, 64, 128, 1, 2),
            (28, 128, 128, 3, 1), (28, 128, 256, 3, 2), (28, 128, 256, 1, 2), (14, 256, 256, 3, 1),
            (14, 256, 512, 3, 2), (14, 256, 512, 1, 2), (7, 512, 512, 3, 1)]
    r32 = [(32, 3, 64, 3, 1), (32, 64, 64, 3, 1), (32, 64, 128, 3, 2), (32, 64, 128, 1, 2), (16, 128, 128, 3, 1),
           (16, 128, 256, 3, 2), (16, 128, 256, 1, 2), (8, 256, 256, 3, 1), (8, 256, 512, 3, 2),
           (8, 256, 512, 1, 2), (4, 512, 512, 3, 1)]
    r20 = [(32, 3, 16, 3, 1), (32, 16, 16, 3, 1), (32, 16, 32, 3, 2), (16, 32, 32, 3, 1), (16, 32, 64, 3, 2),
           (8, 64, 64, 3, 1)]
    out = []
    out += _suite("vgg16@224", 1, [(h, c, k, 3, 1) for h, c, k in vgg], True,
                  quick={(224, 64, 64, 3, 1), (56, 256, 256, 3, 1), (14, 512, 512, 3, 1)})
    out += _suite("vgg16@32", 64, [(h, c, k, 3, 1) for h, c, k in vgg32], True)
    out += _suite("resnet18@224", 8, r224, False, quick={(224, 3, 64, 7, 2), (56, 64, 128, 1, 2)})
    out += _suite("resnet18-cifar@32", 64, r32, False,
                  quick={(32, 64, 64, 3, 1), (16, 128, 128, 3, 1), (8, 256, 256, 3, 1)})
    out += _suite("resnet20-cifar@32", 64, r20, False, quick={(32, 16, 16, 3, 1), (16, 32, 32, 3, 1)})
    merged: dict = {}
    for s in out:
        key = (s.n, s.h, s.c, s.k, s.kernel, s.stride)
        if key in merged:
            m = merged[key]
            merged[key] = ConvSpec(m.n, m.h, m.c, m.k, m.kernel, m.stride, m.bias, m.suites + s.suites,
                                   m.quick or s.quick)
        else:
            merged[key] = s
    return list(merged.values())


@dataclass
class ConvData:
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    dy: np.ndarray
    kw: dict = field(default_factory=dict)


def make_data(spec: ConvSpec, seed: int = 0) -> ConvData:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((spec.n, spec.h, spec.h, spec.c), dtype=np.float32)
    std = np.sqrt(2.0 / (spec.kernel * spec.kernel * spec.c))
    w = (rng.standard_normal((spec.kernel, spec.kernel, spec.c, spec.k), dtype=np.float32) * std).astype(np.float32)
    b = (0.1 * rng.standard_normal(spec.k, dtype=np.float32)) if spec.bias else None
    dy = rng.standard_normal((spec.n, spec.out, spec.out, spec.k), dtype=np.float32)
    kw = dict(stride=spec.stride, padding=spec.pad, fit="crop" if spec.stride > 1 else "error")
    return ConvData(x, w, b, dy, kw)


def _ours(d: ConvData, algorithm: str):
    from convnet.ops import conv2d_backward, conv2d_forward

    def fwd():  # inference, as PyTorch's under inference_mode: no backward will read the cache
        return conv2d_forward(d.x, d.w, d.b, algorithm=algorithm, backward=False, **d.kw)[0]

    def fwd_bwd():
        _, cache = conv2d_forward(d.x, d.w, d.b, algorithm=algorithm, **d.kw)
        return conv2d_backward(d.dy, cache)

    return fwd, fwd_bwd


def _torch(spec: ConvSpec, d: ConvData):
    torch = peers.torch_or_none()
    F = torch.nn.functional
    x, w = peers.torch_cl(d.x), peers.torch_weight(d.w)
    b = None if d.b is None else torch.from_numpy(d.b.copy())
    xg, wg = peers.torch_cl(d.x, grad=True), peers.torch_weight(d.w, grad=True)
    bg = None if d.b is None else torch.from_numpy(d.b.copy()).requires_grad_(True)
    dy = peers.torch_cl(d.dy)

    def fwd():
        with torch.inference_mode():
            return F.conv2d(x, w, b, stride=spec.stride, padding=spec.pad)

    def fwd_bwd():
        xg.grad = wg.grad = None
        if bg is not None:
            bg.grad = None
        y = F.conv2d(xg, wg, bg, stride=spec.stride, padding=spec.pad)
        y.backward(dy)
        return xg.grad, wg.grad

    return fwd, fwd_bwd


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def cost_model_algorithm(spec: ConvSpec, plan) -> str:
    """What the cost model alone picks for this layer (``choose_algorithm``, which never reads the
    tuning cache nor times anything), to compare with ``auto``'s pick, which may be tuned."""
    from convnet.ops.fast import choose_algorithm

    return choose_algorithm(plan.geom, spec.c, spec.k, plan.groups, n=spec.n, numpy=plan.numpy)


def run(settings, *, quick: bool, peer_names, log=print) -> list[dict]:
    from convnet.ops import conv2d_forward

    records = []
    todo = [s for s in specs() if s.quick or not quick]
    for spec in todo:
        d = make_data(spec)
        plan = conv2d_forward(d.x, d.w, d.b, **d.kw)[1].plan
        picked = plan.algorithm
        ours = dict(zip(("fwd", "fwd+bwd"), _ours(d, "auto")))
        theirs = {}
        check = {}
        if "torch" in peer_names:
            tf, tfb = _torch(spec, d)
            theirs["torch"] = {"fwd": tf, "fwd+bwd": tfb}
            y_t = tf().permute(0, 2, 3, 1).numpy()
            check["max_rel_err_vs_torch"] = _rel_err(ours["fwd"](), y_t)
        if "mygrad" in peer_names:
            if (spec.h + 2 * spec.pad - spec.kernel) % spec.stride:
                # MyGrad refuses a geometry that does not tile the padded input exactly (PyTorch floors)
                check["mygrad_unsupported"] = "(H + 2P - F) not divisible by S"
            else:
                mf, mfb_factory = peers.mygrad_conv(d.x, d.w, d.b, stride=spec.stride, padding=spec.pad)
                theirs["mygrad"] = {"fwd": mf, "fwd+bwd": mfb_factory(peers.nchw(d.dy))}
        for mode in ("fwd", "fwd+bwd"):
            group = {"ours": ours[mode]}
            group.update({f"peer:{name}": fns[mode] for name, fns in theirs.items()})
            if spec.is_3x3s1:
                for algo in _applicable(spec):
                    if algo != picked:
                        f, fb = _ours(d, algo)
                        group[f"algo:{algo}"] = f if mode == "fwd" else fb
            times = measure_group(group, settings)
            t_ours = times["ours"]
            rec = {
                "case": f"{spec.label()} {mode}",
                "family": "conv",
                "mode": mode,
                "layer": {"n": spec.n, "h": spec.h, "w": spec.h, "c": spec.c, "k": spec.k, "kernel": spec.kernel,
                          "stride": spec.stride, "padding": spec.pad, "bias": spec.bias, "suites": list(spec.suites)},
                "tags": spec.tags(),
                "quick": spec.quick,
                "ours_ms": t_ours.min_ms,
                "ours_median_ms": t_ours.median_ms,
                "repeats": t_ours.repeats,
                "gflops": (3 if mode == "fwd+bwd" else 1) * spec.flops() / (t_ours.min_ms * 1e-3) / 1e9,
                "algorithm": picked,
                "algorithm_source": plan.source,
                "cost_model_algorithm": cost_model_algorithm(spec, plan),
                "peers": {},
                **check,
            }
            for name in theirs:
                t = times[f"peer:{name}"]
                rec["peers"][name] = {"ms": t.min_ms, "median_ms": t.median_ms, "repeats": t.repeats,
                                      "ratio": t_ours.min_ms / t.min_ms}
            if spec.is_3x3s1:
                algos = {}
                for algo in _applicable(spec):
                    t = t_ours if algo == picked else times[f"algo:{algo}"]
                    algos[algo] = {"ms": t.min_ms, "median_ms": t.median_ms, "repeats": t.repeats}
                rec["algorithms"] = algos
                rec["best_algorithm"] = min(algos, key=lambda a: algos[a]["ms"])
            records.append(rec)
            log(_line(rec))
    return records


def _line(rec) -> str:
    parts = [f"{rec['case']:<58} ours {rec['ours_ms']:9.2f} ms ({rec['algorithm']})"]
    for name, p in rec["peers"].items():
        parts.append(f"{name} {p['ms']:9.2f} ({p['ratio']:.2f}x)")
    if "algorithms" in rec:
        parts.append("algos " + " ".join(f"{a}={v['ms']:.1f}" for a, v in rec["algorithms"].items()))
    return " | ".join(parts)
