"""Imported models: inference of an ONNX file written by PyTorch's exporter, run by convnet
(``convnet.interop.onnx.load``) and by ONNX Runtime on the same file, 224×224, N = 1.

The zoo's ResNet-50 and VGG-19 (seeded random weights) are translated to PyTorch
(:func:`benchmarks.peers.torch_model`) and exported with ``torch.onnx.export``; convnet imports
that file — a graph it did not write — and both run it.  The outputs are compared once
(``max_rel_err_vs_onnxruntime``).  Needs torch and onnxruntime; without them the family is empty.
"""
from __future__ import annotations

import os

import numpy as np

from . import peers
from .timing import measure_group

MODELS = ("resnet50", "vgg19")
QUICK = ("resnet50",)


def run(settings, *, quick: bool, peer_names, log=print) -> list[dict]:
    if "torch" not in peer_names or "onnxruntime" not in peer_names:
        log("interop: skipped (needs torch and onnxruntime)")
        return []
    from convnet import zoo
    from convnet.analysis import summarize
    from convnet.interop.onnx import load

    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    records = []
    for name in (QUICK if quick else MODELS):
        source = zoo.get(name).build(rng=np.random.default_rng(0))
        x = np.random.default_rng(1).standard_normal((1, *source.input_shape), dtype=np.float32)
        sess, path = peers.onnx_session(peers.torch_model(source), peers.nchw(x).shape, threads=threads)
        del source
        try:
            net = load(path)
        finally:
            os.unlink(path)
        xo = peers.nchw(x)
        group = {"ours": lambda: net.predict(x), "onnxruntime": lambda: sess.run(None, {"x": xo})}  # noqa: E731
        y_ours, y_ort = group["ours"](), group["onnxruntime"]()[0]
        err = float(np.abs(y_ours - y_ort).max() / max(np.abs(y_ort).max(), 1e-30))
        times = measure_group(group, settings)
        t, t_ort = times["ours"], times["onnxruntime"]
        flops = summarize(net, batch=1).total("flops_forward")
        rec = {"case": f"interop {name} (torch.onnx.export) inference 224x224 N=1", "family": "interop",
               "mode": "inference", "model": name, "batch": 1, "tags": [f"imported_{name}_inference"],
               "quick": name in QUICK, "ours_ms": t.min_ms, "ours_median_ms": t.median_ms, "repeats": t.repeats,
               "gflops": flops / (t.min_ms * 1e-3) / 1e9, "memory": {},
               "peers": {"onnxruntime": {"ms": t_ort.min_ms, "median_ms": t_ort.median_ms, "repeats": t_ort.repeats,
                                         "ratio": t.min_ms / t_ort.min_ms}},
               "max_rel_err_vs_onnxruntime": err}
        records.append(rec)
        log(f"{rec['case']:<58} ours {t.min_ms:9.2f} ms | onnxruntime {t_ort.min_ms:9.2f} "
            f"({t.min_ms / t_ort.min_ms:.2f}x) | max rel err {err:.1e}")
        del net, sess, group
    return records
