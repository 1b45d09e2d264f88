"""The benchmark report's target checks (issues 6 and 17) on synthetic records: nothing is timed."""
import json
import math

import pytest

from benchmarks import cases_layers, report

GEOMEAN, WORST = "quick suite: geometric mean", "quick suite: no case above"


def rec(case, family="conv", mode="fwd", quick=True, tags=(), **ratios):
    """A record with the given peer ratios (``torch=0.8``), as ``report.finalize`` leaves it."""
    peers = {p: {"ms": 1.0, "median_ms": 1.0, "repeats": 3, "ratio": v} for p, v in ratios.items()}
    return {"case": case, "family": family, "mode": mode, "quick": quick, "tags": list(tags), "ours_ms": 1.0,
            "peers": peers, "gflops": None}


def e2e(model, tag, **ratios):
    return {**rec(f"e2e {model}", family="e2e", mode="inference", tags=(tag,), **ratios), "model": model}


def conv3x3(case, times, picked, cost_model):
    """A record of the 3×3 algorithm table: every algorithm's time, auto's and the cost model's pick."""
    r = rec(case, torch=1.0)
    algos = {a: {"ms": ms, "median_ms": ms, "repeats": 3} for a, ms in times.items()}
    r.update(algorithms=algos, algorithm=picked, cost_model_algorithm=cost_model, ours_ms=times[picked],
             best_algorithm=min(times, key=times.get))
    return r


def row(targets, start):
    """The one target row whose title starts with ``start``."""
    (t,) = [t for t in targets if t["target"].startswith(start)]
    return t


def test_quick_geomean_passes_and_misses_at_its_limit():
    passing = [rec("a", torch=0.5), rec("b", torch=1.2), rec("c", torch=1.0)]  # geomean 0.843
    t = row(report.evaluate_issue17(passing), GEOMEAN)
    assert t["status"] == "PASS" and t["cases"] == 3 and t["limit"] == 0.85 and t["met"] is None
    assert t["value"] == pytest.approx(0.6 ** (1 / 3))
    missing = passing + [rec("d", torch=1.0)]  # geomean 0.880
    t = row(report.evaluate_issue17(missing), GEOMEAN)
    assert t["status"] == "MISS" and t["cases"] == 4 and t["value"] == pytest.approx(0.6 ** 0.25)
    block = "\n".join(report.targets_block(report.evaluate_issue17(missing)))
    assert "geomean 0.88 of 4" in block and "geometric mean 0.88 over 4 cases (limit 0.85)" in block


def test_quick_subset_excludes_full_run_cases_interop_and_missing_torch():
    records = [rec("q", torch=0.5), rec("slow, full run only", quick=False, torch=9.0),
               rec("interop", family="interop", torch=9.0, onnxruntime=9.0), rec("no torch", mygrad=9.0)]
    t = row(report.evaluate_issue17(records), GEOMEAN)
    assert t["cases"] == 1 and t["value"] == pytest.approx(0.5)
    # a --quick run counts every record, marked or not (interop still excluded)
    t = row(report.evaluate_issue17(records, quick_run=True), GEOMEAN)
    assert t["cases"] == 2 and t["status"] == "MISS"


def test_a_quick_case_above_one_and_a_half_is_listed():
    records = [rec("fine", torch=1.5), rec("too slow", torch=1.51), rec("not quick", quick=False, torch=3.0)]
    t = row(report.evaluate_issue17(records), WORST)
    assert t["status"] == "MISS" and (t["met"], t["cases"]) == (1, 2)
    assert t["misses"] == [{"case": "too slow", "value": 1.51}] and t["worst"]["case"] == "too slow"
    assert "- quick suite: no case above 1.5x PyTorch: too slow 1.51" in report.targets_block([t])


def test_missing_peers_give_n_a():
    targets = report.evaluate_issue17([rec("conv without peers"), e2e("vgg16", "vgg16_inference")])
    assert {t["status"] for t in targets} == {"n/a"}
    assert all(t["cases"] == 0 and t["worst"] is None for t in targets)
    assert "| quick suite: geometric mean of ours / PyTorch <= 0.85 | **n/a** | geomean – of 0 | – |" in (
        report.targets_block(targets))


def test_resnet56_does_not_count_for_the_resnet20_step():
    r20 = e2e("resnet20_cifar", "cifar_train_step", torch=0.95)
    r56 = {**e2e("resnet56_cifar", "cifar_train_step", torch=1.4), "quick": False}
    t = row(report.evaluate_issue17([r20, r56]), "CIFAR ResNet-20")
    assert t["status"] == "PASS" and t["cases"] == 1 and t["worst"]["case"] == "e2e resnet20_cifar"
    assert row(report.evaluate_issue17([r56]), "CIFAR ResNet-20")["status"] == "n/a"
    r20["peers"]["torch"]["ratio"] = 1.01
    assert row(report.evaluate_issue17([r20, r56]), "CIFAR ResNet-20")["status"] == "MISS"


def test_inference_and_mygrad_limits():
    vgg = e2e("vgg16", "vgg16_inference", torch=0.79, onnxruntime=1.01)
    targets = report.evaluate_issue17([vgg, e2e("resnet18", "resnet18_inference", torch=1.0)])
    assert row(targets, "VGG16 inference 224, N=1: <= 0.8x PyTorch")["status"] == "PASS"
    assert row(targets, "VGG16 inference 224, N=1: <= 1.0x ONNX")["status"] == "MISS"
    assert row(targets, "ResNet-18")["status"] == "PASS"
    convs = [rec("f", mode="fwd", mygrad=0.6), rec("fb", mode="fwd+bwd", mygrad=0.34)]
    targets = report.evaluate_issue17(convs)
    assert row(targets, ">= 1.5x faster than MyGrad")["status"] == "PASS"
    assert row(targets, ">= 3x faster than MyGrad")["misses"] == [{"case": "fb", "value": 0.34}]


def test_tuned_pick_never_slower_than_the_cost_models():
    same = conv3x3("same pick", {"im2col": 2.0, "winograd4": 1.0}, "winograd4", "winograd4")
    noise = conv3x3("within the margin", {"im2col": 1.04, "winograd2": 1.0}, "im2col", "winograd2")
    worse = conv3x3("tuned worse", {"im2col": 1.2, "winograd2": 1.0}, "im2col", "winograd2")
    untimed = conv3x3("cost model not timed", {"im2col": 1.0}, "im2col", "direct")
    title = "auto's pick <= 1.05x"
    t = row(report.evaluate_issue17([same, noise, untimed]), title)
    assert t["status"] == "PASS" and t["cases"] == 2
    t = row(report.evaluate_issue17([same, noise, worse]), title)
    assert t["status"] == "MISS" and [m["case"] for m in t["misses"]] == ["tuned worse"]
    assert t["misses"][0]["value"] == pytest.approx(1.2)
    table = report.algorithms_table([worse])
    assert "cost model picked" in table[0] and table[2].startswith("| tuned worse | im2col | winograd2 |")


def test_report_and_json_hold_both_target_lists(tmp_path):
    meta = {"environment": {}, "quick": False, "started": "now", "threads": 2, "blas": "?",
            "roofline_gflops_start": 1.0, "roofline_gflops_end": 1.0,
            "settings": {"max_repeats": 1, "warmup": 0}, "duration_s": 0.0}
    records = report.finalize([rec("a", torch=0.5)])
    md, js = report.write(str(tmp_path / "r"), meta, records, report.evaluate_targets(records))
    text = open(md).read()
    assert text.index("## Targets (issue 6)") < text.index("## Targets (issue 17)")
    data = json.load(open(js))
    assert [t["target"] for t in data["targets"]] == [t[0] for t in report.TARGETS]
    assert math.isclose(row(data["targets_issue17"], GEOMEAN)["value"], 0.5)


def test_quick_flags_match_what_a_quick_run_measures():
    """Batch norm's eval mode runs in the full run only, so its records are not marked quick."""
    bn = next(s for s in cases_layers.specs() if s.op == "bn" and s.quick)
    assert bn.is_quick("train fwd+bwd") and not bn.is_quick("eval fwd")
    assert not any(s.is_quick(m) for s in cases_layers.specs() if not s.quick for m in s.modes(False))
