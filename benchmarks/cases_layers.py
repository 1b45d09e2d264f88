"""Pooling, batch normalization and ReLU at the sizes the conv cases run at.

* ``maxpool 2x2/2`` (VGG, and the CIFAR-size nets) and ``maxpool 3x3/2 p1``
  (ResNet's stem): "fwd" is inference (:func:`convnet.ops.max_pool2d`, no
  switches; PyTorch under ``inference_mode``); "fwd+bwd" is
  :func:`~convnet.ops.max_pool2d_forward` + :func:`~convnet.ops.max_pool2d_backward`.
* ``batchnorm train fwd+bwd``: the :class:`convnet.layers.BatchNorm` layer in
  training (batch statistics and the running-average update) and its backward,
  against ``nn.BatchNorm2d`` in ``train()``; ``batchnorm eval fwd`` (full run
  only) with running statistics, as inference runs it.
* ``relu``: :func:`convnet.ops.relu` ("fwd") and ``relu_forward`` +
  ``relu_backward`` ("fwd+bwd") against ``F.relu`` (not in place).

These are memory-bound: no GFLOP/s is reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import peers
from .timing import measure_group


@dataclass(frozen=True)
class LayerSpec:
    op: str  # "maxpool2", "maxpool3", "bn", "relu"
    n: int
    h: int
    c: int
    quick: bool = False

    def label(self, mode: str) -> str:
        name = {"maxpool2": "maxpool 2x2/2", "maxpool3": "maxpool 3x3/2 p1", "bn": "batchnorm", "relu": "relu"}[self.op]
        return f"{name} {self.h}x{self.h}x{self.c} N={self.n} {mode}"

    def modes(self, quick: bool) -> tuple:
        if self.op == "bn":
            return ("train fwd+bwd",) if quick else ("train fwd+bwd", "eval fwd")
        return ("fwd", "fwd+bwd")

    def is_quick(self, mode: str) -> bool:
        """The case runs in ``--quick`` (batch norm's eval mode is measured in the full run only)."""
        return self.quick and mode in self.modes(True)


def specs() -> list[LayerSpec]:
    vgg = [(224, 64), (112, 128), (56, 256), (28, 512), (14, 512)]
    cifar = [(32, 64), (16, 128), (8, 256), (4, 512)]
    r224 = [(112, 64), (56, 64), (28, 128), (14, 256), (7, 512)]
    r20 = [(32, 16), (16, 32), (8, 64)]
    out = []
    out += [LayerSpec("maxpool2", 1, h, c, (h, c) in {(224, 64)}) for h, c in vgg]
    out += [LayerSpec("maxpool2", 64, h, c, (h, c) == (32, 64)) for h, c in cifar]
    out += [LayerSpec("maxpool3", 8, 112, 64, True)]
    out += [LayerSpec("bn", 8, h, c, (h, c) == (56, 64)) for h, c in r224]
    out += [LayerSpec("bn", 64, h, c, (h, c) == (32, 64)) for h, c in cifar]
    out += [LayerSpec("bn", 64, h, c, (h, c) == (32, 16)) for h, c in r20]
    out += [LayerSpec("relu", 1, h, c, (h, c) == (224, 64)) for h, c in vgg]
    out += [LayerSpec("relu", 8, h, c, False) for h, c in r224[:2]]
    out += [LayerSpec("relu", 64, h, c, (h, c) == (32, 64)) for h, c in cifar[:3]]
    return out


def _fns(spec: LayerSpec, mode: str, x, dy, torch_on: bool):
    """``(ours, torch or None)`` closures for one case."""
    from convnet import ops
    from convnet.layers import BatchNorm

    torch = peers.torch_or_none() if torch_on else None
    if torch is not None:
        F = torch.nn.functional
        xt, xg, dyt = peers.torch_cl(x), peers.torch_cl(x, grad=True), peers.torch_cl(dy)

    if spec.op.startswith("maxpool"):
        kw = dict(pool_size=2) if spec.op == "maxpool2" else dict(pool_size=3, stride=2, padding=1, fit="crop")
        tk = dict(kernel_size=2, stride=2) if spec.op == "maxpool2" else dict(kernel_size=3, stride=2, padding=1)
        if mode == "fwd":
            ours = lambda: ops.max_pool2d(x, **kw)  # noqa: E731

            def theirs():
                with torch.inference_mode():
                    return F.max_pool2d(xt, **tk)
        else:
            def ours():
                y, cache = ops.max_pool2d_forward(x, **kw)
                return ops.max_pool2d_backward(dy, cache)

            def theirs():
                xg.grad = None
                F.max_pool2d(xg, **tk).backward(dyt)
                return xg.grad
    elif spec.op == "relu":
        if mode == "fwd":
            ours = lambda: ops.relu(x)  # noqa: E731

            def theirs():
                with torch.inference_mode():
                    return F.relu(xt)
        else:
            def ours():
                y, cache = ops.relu_forward(x)
                return ops.relu_backward(dy, cache)

            def theirs():
                xg.grad = None
                F.relu(xg).backward(dyt)
                return xg.grad
    else:
        bn = BatchNorm()
        bn.build(x.shape[1:])
        tbn = torch.nn.BatchNorm2d(spec.c).to(memory_format=torch.channels_last) if torch is not None else None
        if mode == "train fwd+bwd":
            def ours():
                bn.forward(x, train=True)
                return bn.backward(dy)

            def theirs():
                tbn.train()
                xg.grad = None
                for p in tbn.parameters():
                    p.grad = None
                tbn(xg).backward(dyt)
                return xg.grad
        else:
            ours = lambda: bn.forward(x, train=False, keep_cache=False)  # noqa: E731

            def theirs():
                tbn.eval()
                with torch.inference_mode():
                    return tbn(xt)
    return ours, (theirs if torch is not None else None)


def run(settings, *, quick: bool, peer_names, log=print) -> list[dict]:
    records = []
    for spec in specs():
        if quick and not spec.quick:
            continue
        rng = np.random.default_rng(1)
        x = rng.standard_normal((spec.n, spec.h, spec.h, spec.c), dtype=np.float32)
        for mode in spec.modes(quick):
            out_h = spec.h // 2 if spec.op != "maxpool3" else (spec.h + 2 - 3) // 2 + 1
            dshape = (spec.n, out_h, out_h, spec.c) if spec.op.startswith("maxpool") else x.shape
            dy = rng.standard_normal(dshape, dtype=np.float32)
            ours, theirs = _fns(spec, mode, x, dy, "torch" in peer_names)
            group = {"ours": ours} if theirs is None else {"ours": ours, "torch": theirs}
            times = measure_group(group, settings)
            t = times["ours"]
            rec = {
                "case": spec.label(mode),
                "family": {"maxpool2": "pool", "maxpool3": "pool"}.get(spec.op, spec.op),
                "mode": mode,
                "layer": {"n": spec.n, "h": spec.h, "w": spec.h, "c": spec.c, "op": spec.op},
                "tags": [],
                "quick": spec.is_quick(mode),
                "ours_ms": t.min_ms,
                "ours_median_ms": t.median_ms,
                "repeats": t.repeats,
                "gflops": None,
                "gbytes_per_s": x.nbytes / (t.min_ms * 1e-3) / 1e9,
                "peers": {},
            }
            if theirs is not None:
                tt = times["torch"]
                rec["peers"]["torch"] = {"ms": tt.min_ms, "median_ms": tt.median_ms, "repeats": tt.repeats,
                                         "ratio": t.min_ms / tt.min_ms}
            records.append(rec)
            p = rec["peers"].get("torch")
            log(f"{rec['case']:<58} ours {t.min_ms:9.2f} ms" + (f" | torch {p['ms']:9.2f} ({p['ratio']:.2f}x)" if p else ""))
    return records
