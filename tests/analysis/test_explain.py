"""explain(net) / `convnet summary --explain`: each CONV layer's algorithm, multiplies and workspace (issue 6)."""
import json

import numpy as np
import pytest

from convnet import zoo
from convnet.analysis import summarize
from convnet.analysis.explain import explain
from convnet.cli import main
from convnet.errors import ConfigError
from convnet.ops import kernels
from convnet.pattern import parse


def test_vgg16_rows_follow_the_rule_and_the_counts():
    ex = explain(zoo.get("vgg16"), batch=1)
    algos = {c.name: c.algorithm for c in ex.choices}
    # C = 3: the transforms cannot pay; the direct loops do (with numba)
    assert algos["conv1_1"] == ("direct" if kernels.enabled() else "im2col")
    assert algos["conv1_2"] == "winograd4" and algos["conv4_2"] == "winograd2" and algos["conv5_1"] == "winograd2"
    summary = {r.name: r for r in summarize(zoo.get("vgg16"), batch=1).rows}
    for c in ex.choices:  # im2col's count is every tap of every window: the summary's multiply-adds
        assert c.direct_multiplies == summary[c.name].macs
    c12 = next(c for c in ex.choices if c.name == "conv1_2")
    t = 56 * 56  # F(4,3) tiles of a 224×224 map
    if kernels.enabled():  # separable transforms: 3·α·(3+α) a weight pair, then six terms a tile sum:
        # 6·α·(m+α) a tile and C, 6·m·(α+m) a tile and K
        transforms = 3 * 6 * 9 * 64 * 64 + 6 * 6 * 10 * t * 64 + 6 * 4 * 10 * t * 64
    else:  # the Kronecker GEMMs: 9·α², α⁴ and m²·α²
        transforms = 9 * 36 * 64 * 64 + 36 * 36 * t * 64 + 16 * 36 * t * 64
    assert c12.multiplies == 36 * t * 64 * 64 + transforms
    if kernels.enabled():  # V and M of one block of whole tile rows (37 of 56 tiles: 2048 or just over)
        assert c12.workspace_bytes == 36 * 37 * 56 * (64 + 64) * 4 + 36 * 64 * 64 * 4  # and the transformed filter
    assert 0.25 < c12.ratio < 0.5
    ex8 = explain(zoo.get("vgg16"), batch=8)  # 8 images of 14×14×512: 128 tiles of F(4,3)
    c51 = next(c for c in ex8.choices if c.name == "conv5_1")
    assert c51.algorithm == "winograd4" and c51.multiplies < c51.direct_multiplies / 2
    vgg = zoo.get("vgg16")
    next(n.layer for n in vgg.nodes if n.name == "conv5_1").algorithm = "im2col"  # as a user overrides it
    c = next(c for c in explain(vgg, batch=1).choices if c.name == "conv5_1")
    padded = 16 * 16 * 512 * 4
    assert c.workspace_bytes == padded + 14 * 14 * 9 * 512 * 4  # padded input + one block of all 14 rows
    assert ex.total_multiplies == sum(c.multiplies for c in ex.choices)


def test_explained_algorithm_is_what_the_layers_run():
    net = parse("INPUT[12x12x3] -> CONV3-16 -> RELU -> CONV3-64 -> CONV3-64 -> CONV1-40 -> POOL2 -> "
                "CONV5-10 -> FC-4")
    net.build()
    for batch in (1, 16):
        ex = explain(net, batch=batch)
        x = np.random.default_rng(0).standard_normal((batch, 12, 12, 3)).astype(np.float32)
        net.forward(x, train=True)
        ran = {n.name: n.layer._cache.algorithm for n in net.nodes if type(n.layer).__name__ == "Conv2D"}
        net.clear_cache()
        assert {c.name: c.algorithm for c in ex.choices} == ran
        assert {c.algorithm for c in ex.choices} >= {"gemm1x1", "im2col"}


def test_forced_algorithm_and_bad_batch():
    net = zoo.get("resnet20_cifar")
    for node in net.nodes:
        if type(node.layer).__name__ == "Conv2D":
            node.layer.algorithm = "im2col"
    assert {c.algorithm for c in explain(net, batch=64).choices} == {"im2col"}
    with pytest.raises(ConfigError, match="batch"):
        explain(net, batch=0)


def test_cli_explain_text_json_csv(capsys):
    assert main(["summary", "resnet20_cifar", "--batch", "64", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "Convolution algorithms of resnet20_cifar (batch 64" in out
    table = out[out.index("Convolution algorithms"):]
    row = next(line for line in table.splitlines() if line.startswith("layer3.1.conv1"))
    assert "winograd4" in row
    assert main(["summary", "lenet5", "--explain", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in d["algorithms"]["layers"]] == ["c1", "c3", "c5"]
    assert main(["summary", "alexnet", "--explain", "--format", "csv", "--no-lint"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("name,algorithm,multiplies") and len(lines) == 6
