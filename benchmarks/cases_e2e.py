"""End to end: inference at 224×224, N=1, and a CIFAR training step at N=64.

* ``vgg16`` and ``resnet18`` inference: ``net.predict(x)`` (ours) against the
  same net translated to PyTorch (``eval()``, ``inference_mode``,
  channels_last) and exported to ONNX Runtime.  The logits of the three are
  compared once (``max_rel_err_*`` in the record).
* ``resnet20_cifar`` (and, in the full run, ``resnet56_cifar``) training step
  at N=64: forward in training mode, softmax cross-entropy, backward and an
  SGD-momentum step (lr 0.01, momentum 0.9) — ours with
  :class:`convnet.train.optimizers.Momentum`, PyTorch with ``torch.optim.SGD``.
  The zoo has no CIFAR-style ResNet-18, so it is not run end to end (its
  layers are in the conv cases).

GFLOP/s is the net's forward FLOPs (plus backward FLOPs for training) from
:meth:`convnet.net.Net.summary` over our time.

Memory: the quick run measures ours only, in process, with ``tracemalloc``;
the full run measures every library in a fresh process (:mod:`benchmarks.memprobe`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np

from . import peers
from .timing import measure_group

INFER = ("vgg16", "resnet18")
TRAIN = ("resnet20_cifar",)
TRAIN_FULL = ("resnet20_cifar", "resnet56_cifar")
TRAIN_BATCH = 64


def build_net(name: str):
    from convnet import zoo

    return zoo.get(name).build(rng=np.random.default_rng(0))


def make_input(net, batch: int):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, *net.input_shape), dtype=np.float32)
    classes = net.output_shape()[-1]
    return x, rng.integers(0, classes, size=batch)


def weight_bytes(net) -> int:
    return int(sum(p.nbytes for _, p, _ in net.named_parameters()) + sum(v.nbytes for _, v in net.named_state()))


def ours_infer(net, x):
    return lambda: net.predict(x)


def ours_train(net, x, labels):
    from convnet.ops import softmax_cross_entropy_backward, softmax_cross_entropy_forward
    from convnet.train.optimizers import Momentum

    opt = Momentum(lr=0.01, momentum=0.9)

    def step():
        scores = net.forward(x, train=True)
        loss, cache = softmax_cross_entropy_forward(scores, labels)
        # as the trainer (and PyTorch, whose input needs no grad): no gradient for the images
        net.backward(softmax_cross_entropy_backward(1.0, cache), input_grad=False)
        opt.step(net.named_parameters())
        return loss

    return step


def torch_infer(model, x):
    torch = peers.torch_or_none()
    model.eval()
    xt = peers.torch_cl(x)

    def run():
        with torch.inference_mode():
            return model(xt)

    return run


def torch_train(model, x, labels):
    torch = peers.torch_or_none()
    model.train()
    xt = peers.torch_cl(x)
    yt = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def memory_bound(net, batch: int = 1) -> dict:
    """The target's bound: 1.25 × (weights + the two largest activations + the workspace cap)."""
    from convnet.analysis import summarize
    from convnet.ops import DEFAULT_WORKSPACE_BYTES

    summ = summarize(net, batch=batch)
    acts = sorted((r.activation_bytes for r in summ.rows), reverse=True)
    w = weight_bytes(net)
    base = w + sum(acts[:2]) + DEFAULT_WORKSPACE_BYTES
    return {"weights_bytes": w, "two_largest_activations_bytes": int(sum(acts[:2])),
            "workspace_cap_bytes": DEFAULT_WORKSPACE_BYTES, "bound_bytes": int(1.25 * base)}


def _tracemalloc_peak(fn) -> int:
    import gc

    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _probe(lib, model, task, batch, onnx_path=None, threads=2) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memprobe", "--lib", lib, "--model", model, "--task", task,
           "--batch", str(batch), "--threads", str(threads)]
    if onnx_path:
        cmd += ["--onnx", onnx_path]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    envv = dict(os.environ)
    envv["PYTHONPATH"] = os.pathsep.join([root, os.path.join(root, "src"), envv.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=envv, timeout=600)
        if res.returncode != 0:
            return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
        return json.loads(res.stdout.strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001 - a failed probe is reported, not fatal
        return {"error": repr(exc)}


def _peer(t_ours, t) -> dict:
    return {"ms": t.min_ms, "median_ms": t.median_ms, "repeats": t.repeats, "ratio": t_ours.min_ms / t.min_ms}


def run(settings, *, quick: bool, peer_names, log=print, memory: str = "auto") -> list[dict]:
    """``memory``: "auto" (in-process tracemalloc when quick, subprocess probes otherwise), "probe", "none"."""
    from convnet.analysis import summarize

    if memory == "auto":
        memory = "tracemalloc" if quick else "probe"
    records = []
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    for name in INFER:
        net = build_net(name)
        x, _ = make_input(net, 1)
        summ = summarize(net, batch=1)
        ours = ours_infer(net, x)
        y_ours = ours()
        group, checks, onnx_path, sess, model = {"ours": ours}, {}, None, None, None
        if "torch" in peer_names:
            model = peers.torch_model(net)
            group["torch"] = torch_infer(model, x)
            checks["max_rel_err_vs_torch"] = _rel(y_ours, group["torch"]().numpy())
            if "onnxruntime" in peer_names:
                sess, onnx_path = peers.onnx_session(model, peers.nchw(x).shape, threads=threads)
                xo = peers.nchw(x)
                group["onnxruntime"] = lambda: sess.run(None, {"x": xo})  # noqa: E731
                checks["max_rel_err_vs_onnxruntime"] = _rel(y_ours, group["onnxruntime"]()[0])
        times = measure_group(group, settings)
        t_ours = times["ours"]
        rec = {"case": f"e2e {name} inference 224x224 N=1", "family": "e2e", "mode": "inference",
               "model": name, "batch": 1, "tags": [f"{name}_inference"], "quick": True,
               "ours_ms": t_ours.min_ms, "ours_median_ms": t_ours.median_ms, "repeats": t_ours.repeats,
               "gflops": summ.total("flops_forward") / (t_ours.min_ms * 1e-3) / 1e9,
               "peers": {p: _peer(t_ours, t) for p, t in times.items() if p != "ours"},
               "memory": {"bound": memory_bound(net)}, **checks}
        group = sess = model = None
        mem = rec["memory"]
        mem["method"] = "tracemalloc (in process)" if memory == "tracemalloc" else "fresh-process probe"
        if memory == "tracemalloc":
            mem["ours"] = {"tracemalloc_peak": _tracemalloc_peak(ours), "weights_bytes": weight_bytes(net)}
        del net, ours, x
        if memory == "probe":
            mem["ours"] = _probe("ours", name, "infer", 1, threads=threads)
            if "torch" in peer_names:
                mem["torch"] = _probe("torch", name, "infer", 1, threads=threads)
            if onnx_path:
                mem["onnxruntime"] = _probe("onnxruntime", name, "infer", 1, onnx_path, threads=threads)
        if onnx_path:
            os.unlink(onnx_path)
        o = mem.get("ours", {})
        if "tracemalloc_peak" in o:
            mem["ours_peak_bytes"] = o["weights_bytes"] + o["tracemalloc_peak"]
        records.append(rec)
        log(_line(rec))
    for name in (TRAIN if quick else TRAIN_FULL):
        net = build_net(name)
        x, labels = make_input(net, TRAIN_BATCH)
        summ = summarize(net, batch=TRAIN_BATCH)
        rec = {"case": f"e2e {name} train step 32x32 N={TRAIN_BATCH}", "family": "e2e", "mode": "train step",
               "model": name, "batch": TRAIN_BATCH, "tags": ["cifar_train_step"], "quick": name in TRAIN,
               "peers": {}, "memory": {}}
        model = peers.torch_model(net) if "torch" in peer_names else None  # same starting weights
        ours = ours_train(net, x, labels)
        group = {"ours": ours}
        loss_ours = ours()
        if model is not None:
            group["torch"] = torch_train(model, x, labels)
            rec["first_loss"] = {"ours": loss_ours, "torch": group["torch"]()}
        times = measure_group(group, settings)
        t_ours = times["ours"]
        rec.update(ours_ms=t_ours.min_ms, ours_median_ms=t_ours.median_ms, repeats=t_ours.repeats,
                   gflops=(summ.total("flops_forward") + summ.total("flops_backward")) / (t_ours.min_ms * 1e-3) / 1e9)
        rec["peers"] = {p: _peer(t_ours, t) for p, t in times.items() if p != "ours"}
        group = model = None
        mem = rec["memory"]
        mem["method"] = "tracemalloc (in process)" if memory == "tracemalloc" else "fresh-process probe"
        if memory == "tracemalloc":
            mem["ours"] = {"tracemalloc_peak": _tracemalloc_peak(ours), "weights_bytes": weight_bytes(net)}
        del net, ours
        if memory == "probe":
            mem["ours"] = _probe("ours", name, "train", TRAIN_BATCH, threads=threads)
            if "torch" in peer_names:
                mem["torch"] = _probe("torch", name, "train", TRAIN_BATCH, threads=threads)
        o = mem.get("ours", {})
        if "tracemalloc_peak" in o:
            mem["ours_peak_bytes"] = o["weights_bytes"] + o["tracemalloc_peak"]
        records.append(rec)
        log(_line(rec))
    return records


def _line(rec) -> str:
    parts = [f"{rec['case']:<58} ours {rec['ours_ms']:9.2f} ms"]
    for name, p in rec["peers"].items():
        parts.append(f"{name} {p['ms']:9.2f} ({p['ratio']:.2f}x)")
    return " | ".join(parts)
