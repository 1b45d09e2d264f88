"""Issue 5: dense (sliding) evaluation of a fully convolutional net against looping over crops.

The notes: a ConvNet converted to a fully convolutional one evaluates every crop position
of a larger image in one pass, "far cheaper because the evaluations share computation".
Both sides here are ours (the same weights); the ratio is dense / crop loop (< 1: dense is
cheaper).  The nets are VGG- and AlexNet-shaped with unpadded convolutions, for which the
two give the same scores to float32 rounding (checked and reported as ``max_rel_err``).
"""
from __future__ import annotations

import numpy as np

from .timing import measure_group


def _vgg_style(width: int):
    from convnet.layers import Conv2D, Dense, MaxPool2D, ReLU
    from convnet.net import Net

    layers = []
    for i, k in enumerate((width, 2 * width, 4 * width, 8 * width, 8 * width), start=1):
        layers += [Conv2D(k, 3, name=f"conv{i}"), ReLU(name=f"relu{i}"), MaxPool2D(2, name=f"pool{i}")]
    layers += [Dense(256, name="fc6"), ReLU(name="relu6"), Dense(256, name="fc7"), ReLU(name="relu7"), Dense(10, name="fc8")]
    # 222 = the smallest size near 224 for which five valid 3×3 convs and 2×2 pools divide evenly
    return Net.sequential(layers, name="vgg-style", input_shape=(222, 222, 3)).build(rng=np.random.default_rng(0))


def _alexnet_style(width: int):
    from convnet.layers import LRN, Conv2D, Dense, MaxPool2D, ReLU
    from convnet.net import Net

    layers = [Conv2D(width, 11, stride=4, name="conv1"), ReLU(name="relu1"), LRN(name="norm1"),
              MaxPool2D(3, stride=2, name="pool1"), Conv2D(2 * width, 5, name="conv2"), ReLU(name="relu2"),
              MaxPool2D(3, stride=2, name="pool2"), Conv2D(4 * width, 3, name="conv3"), ReLU(name="relu3"),
              MaxPool2D(3, stride=2, name="pool3"), Dense(256, name="fc6"), ReLU(name="relu6"), Dense(10, name="fc8")]
    return Net.sequential(layers, name="alexnet-style", input_shape=(227, 227, 3)).build(rng=np.random.default_rng(1))


def run(settings, *, quick: bool, peer_names=(), log=print) -> list[dict]:
    from convnet.analysis.surgery import crop_scores, dense_scores, to_fully_convolutional, total_stride

    records = []
    cases = [("vgg-style", _vgg_style(16 if quick else 32), 2), ("alexnet-style", _alexnet_style(24 if quick else 48), 2)]
    for name, net, extra in cases:
        fcn = to_fully_convolutional(net)
        h, w = net.input_shape[:2]
        s = total_stride(fcn)[0]
        image = np.random.default_rng(2).standard_normal((h + extra * s, w + extra * s, 3)).astype(np.float32)
        for shifts in (1, 2):
            dense, step = dense_scores(fcn, image, crop_shape=(h, w), shifts=shifts)
            crops = crop_scores(net, image, crop_shape=(h, w), step=step)
            err = float(np.abs(dense - crops).max() / np.abs(crops).max())
            times = measure_group({
                "dense": lambda: dense_scores(fcn, image, crop_shape=(h, w), shifts=shifts),
                "crops": lambda: crop_scores(net, image, crop_shape=(h, w), step=step),
            }, settings)
            t_dense, t_crops = times["dense"], times["crops"]
            positions = dense.shape[0] * dense.shape[1]
            rec = {"case": f"dense {name} {image.shape[0]}x{image.shape[1]} stride {step[0]} ({positions} crops)",
                   "family": "dense", "mode": "inference", "tags": ["dense"], "quick": True,
                   "ours_ms": t_dense.min_ms, "ours_median_ms": t_dense.median_ms, "repeats": t_dense.repeats,
                   "crop_loop_ms": t_crops.min_ms, "ratio_dense_over_crops": t_dense.min_ms / t_crops.min_ms,
                   "max_rel_err": err, "peers": {}, "gflops": None}
            log(f"{rec['case']:<60} dense {t_dense.min_ms:9.2f} ms | crop loop {t_crops.min_ms:9.2f} ms "
                f"({rec['ratio_dense_over_crops']:.3f}x, max rel err {err:.1e})")
            records.append(rec)
    return records


def table(records: list[dict]) -> list[str]:
    rows = [r for r in records if r.get("family") == "dense"]
    if not rows:
        return []
    lines = ["| case | dense ms | crop loop ms | dense / crops | max rel err |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['ours_ms']:.2f} | {r['crop_loop_ms']:.2f} | {r['ratio_dense_over_crops']:.3f} | "
                     f"{r['max_rel_err']:.1e} |")
    return lines
