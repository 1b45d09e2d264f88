"""Results as Markdown and JSON, and the issue's targets as a pass/miss summary.

Every record has ``case``, ``ours_ms`` (the minimum over the repeats),
``peer`` / ``peer_ms`` / ``ratio`` for the primary peer (PyTorch; ratio =
ours / peer, below 1 means we are faster), ``gflops`` (ours), and ``peers``
with every peer that ran (``ms``, ``median_ms``, ``ratio``), and ``quick`` (the case
runs in ``--quick``).  Conv records carry ``algorithm`` (what ``auto`` ran) and
``cost_model_algorithm`` (what the cost model alone would run); those of 3×3
stride-1 layers also ``algorithms`` (each algorithm's time) and
``best_algorithm``; end-to-end records carry ``memory``.

Two target lists are checked: issue 6's (:data:`TARGETS`, :func:`evaluate_targets`) and
issue 17's (:func:`evaluate_issue17`), each a list of rows with the same keys.
"""
from __future__ import annotations

import json
import math

from .env import machine_line

MIB = 2**20
PEER_ORDER = ("torch", "onnxruntime", "mygrad")
PEER_TITLE = {"torch": "PyTorch", "onnxruntime": "ONNX RT", "mygrad": "MyGrad"}



def _malloc_line(m: dict) -> str:
    if m.get("tuned"):
        return (f"mmap threshold {m['mmap_threshold'] // 2**20} MiB, trim threshold {m['trim_threshold'] // 2**20} MiB "
                "(as `import convnet` sets them)")
    return f"glibc defaults ({m.get('reason', 'unknown')})"

def finalize(records: list[dict]) -> list[dict]:
    """Add the flat ``peer``/``peer_ms``/``ratio`` fields (primary peer: PyTorch, else the first)."""
    for r in records:
        primary = next((p for p in PEER_ORDER if p in r.get("peers", {})), None)
        r["peer"] = primary
        r["peer_ms"] = r["peers"][primary]["ms"] if primary else None
        r["ratio"] = r["peers"][primary]["ratio"] if primary else None
    return records


# -- targets ------------------------------------------------------------------------------------
def _conv(tag, mode):
    return lambda r: r["family"] == "conv" and tag in r["tags"] and r["mode"] == mode


def _peer_ratio(peer):
    return lambda r: r["peers"].get(peer, {}).get("ratio")


def _memory_ratio(r):
    mem = r.get("memory", {})
    peak, bound = mem.get("ours_peak_bytes"), mem.get("bound", {}).get("bound_bytes")
    if peak is None or not bound:
        return None
    return peak / (bound / 1.25)  # peak / (weights + two largest activations + workspace cap)


TARGETS = [
    ("3x3/1 conv, C,K >= 128: fwd <= 0.8x PyTorch", _conv("3x3s1_ck_ge_128", "fwd"), _peer_ratio("torch"), 0.8),
    ("3x3/1 conv, C,K >= 128: fwd+bwd <= 0.7x PyTorch", _conv("3x3s1_ck_ge_128", "fwd+bwd"), _peer_ratio("torch"), 0.7),
    ("3x3/1 conv, C = K = 64: fwd <= 1.0x PyTorch", _conv("3x3s1_ck_64", "fwd"), _peer_ratio("torch"), 1.0),
    ("3x3/1 conv, C = K = 64: fwd+bwd <= 1.0x PyTorch", _conv("3x3s1_ck_64", "fwd+bwd"), _peer_ratio("torch"), 1.0),
    ("VGG16 inference 224, N=1: <= 1.0x PyTorch", lambda r: "vgg16_inference" in r["tags"], _peer_ratio("torch"), 1.0),
    ("VGG16 inference 224, N=1: <= 1.2x ONNX Runtime", lambda r: "vgg16_inference" in r["tags"],
     _peer_ratio("onnxruntime"), 1.2),
    ("ResNet-18 inference 224, N=1: <= 1.2x PyTorch", lambda r: "resnet18_inference" in r["tags"],
     _peer_ratio("torch"), 1.2),
    ("CIFAR ResNet training step N=64: <= 1.0x PyTorch", lambda r: "cifar_train_step" in r["tags"],
     _peer_ratio("torch"), 1.0),
    (">= 3x faster than MyGrad on every conv case it supports (ratio <= 0.333)",
     lambda r: r["family"] == "conv" and "mygrad" in r["peers"], _peer_ratio("mygrad"), 1 / 3),
    ("inference peak memory <= 1.25 x (weights + 2 largest activations + workspace cap)",
     lambda r: r["family"] == "e2e" and r["mode"] == "inference", _memory_ratio, 1.25),
]


def _values(records, select, value) -> list[tuple[str, float]]:
    """``(case, value)`` of the selected records that have a value (a missing peer: none)."""
    cases = [(r["case"], value(r)) for r in records if select(r)]
    return [(c, v) for c, v in cases if v is not None]


def _extremes(cases) -> dict:
    """The ``worst`` (largest) and ``best`` (smallest) case, None where there is none."""
    if not cases:
        return {"worst": None, "best": None}
    worst, best = max(cases, key=lambda cv: cv[1]), min(cases, key=lambda cv: cv[1])
    return {"worst": {"case": worst[0], "value": worst[1]}, "best": {"case": best[0], "value": best[1]}}


def evaluate_one(title, select, value, limit, records) -> dict:
    """One per-case target: every selected case with a value must be at most ``limit``."""
    cases = _values(records, select, value)
    misses = [(c, v) for c, v in cases if v > limit]
    return {
        "target": title, "limit": limit, "cases": len(cases), "met": len(cases) - len(misses),
        "status": "n/a" if not cases else ("PASS" if not misses else "MISS"),
        **_extremes(cases),
        "misses": [{"case": c, "value": v} for c, v in misses],
    }


def evaluate_geomean(title, select, value, limit, records) -> dict:
    """An aggregate target: the geometric mean of the selected values (``value``) is at most ``limit``;
    ``met`` is None (no case misses on its own), the worst and best cases are kept for reading."""
    cases = [(c, v) for c, v in _values(records, select, value) if v > 0]
    mean = math.exp(sum(math.log(v) for _, v in cases) / len(cases)) if cases else None
    return {
        "target": title, "limit": limit, "cases": len(cases), "met": None, "value": mean,
        "status": "n/a" if mean is None else ("PASS" if mean <= limit else "MISS"),
        **_extremes(cases),
        "misses": [],
    }


def evaluate_targets(records: list[dict]) -> list[dict]:
    """Issue 6's targets (:data:`TARGETS`), one row each."""
    return [evaluate_one(title, select, value, limit, records) for title, select, value, limit in TARGETS]


# -- issue 17's targets -------------------------------------------------------------------------
def _is_quick(quick_run: bool):
    """Cases of the quick suite with a PyTorch ratio: every case of a ``--quick`` run, the records
    marked ``quick`` in a full run; interop records (against ONNX Runtime only) never count."""
    def select(r):
        return ((quick_run or bool(r.get("quick"))) and r.get("family") != "interop"
                and _peer_ratio("torch")(r) is not None)
    return select


def _tagged(tag, model=None):
    """Records carrying ``tag`` (and, where given, of that ``model``: ResNet-56 shares ResNet-20's tag)."""
    return lambda r: tag in r.get("tags", ()) and (model is None or r.get("model") == model)


def _conv_mode_with(peer, mode):
    """Conv records of ``mode`` that the ``peer`` ran (MyGrad refuses some geometries)."""
    return lambda r: r.get("family") == "conv" and r.get("mode") == mode and peer in r.get("peers", {})


def tuned_over_cost_model(r) -> float | None:
    """time(auto's pick) / time(the cost model's pick) from the record's algorithm table; None where
    either was not timed (or the record predates ``cost_model_algorithm``)."""
    algos, cost = r.get("algorithms") or {}, r.get("cost_model_algorithm")
    picked = algos.get(r.get("algorithm"), {}).get("ms")
    model = algos.get(cost, {}).get("ms")
    return picked / model if picked and model else None


#: the tuner keeps the cost model's choice unless another is 5 % faster (docs/tuning.md): its noise margin
TUNER_MARGIN = 1.05

TARGETS_ISSUE17 = [
    ("CIFAR ResNet-20 training step N=64: <= 1.0x PyTorch", _tagged("cifar_train_step", "resnet20_cifar"),
     _peer_ratio("torch"), 1.0),
    ("ResNet-18 inference 224, N=1: <= 1.0x PyTorch", _tagged("resnet18_inference"), _peer_ratio("torch"), 1.0),
    ("VGG16 inference 224, N=1: <= 0.8x PyTorch", _tagged("vgg16_inference"), _peer_ratio("torch"), 0.8),
    ("VGG16 inference 224, N=1: <= 1.0x ONNX Runtime", _tagged("vgg16_inference"), _peer_ratio("onnxruntime"), 1.0),
    (">= 3x faster than MyGrad on every fwd+bwd conv case it supports (ratio <= 0.333)",
     _conv_mode_with("mygrad", "fwd+bwd"), _peer_ratio("mygrad"), 1 / 3),
    (">= 1.5x faster than MyGrad on every fwd conv case it supports (ratio <= 0.667)",
     _conv_mode_with("mygrad", "fwd"), _peer_ratio("mygrad"), 1 / 1.5),
    (f"auto's pick <= {TUNER_MARGIN}x the cost model's pick (3x3 algorithm table)",
     lambda r: "algorithms" in r, tuned_over_cost_model, TUNER_MARGIN),
]


def evaluate_issue17(records: list[dict], *, quick_run: bool = False) -> list[dict]:
    """Issue 17's targets: the quick suite's geometric mean and worst case against PyTorch, then
    :data:`TARGETS_ISSUE17`.  ``quick_run``: the records come from a ``--quick`` run (all quick)."""
    quick, torch = _is_quick(quick_run), _peer_ratio("torch")
    return [
        evaluate_geomean("quick suite: geometric mean of ours / PyTorch <= 0.85", quick, torch, 0.85, records),
        evaluate_one("quick suite: no case above 1.5x PyTorch", quick, torch, 1.5, records),
        *(evaluate_one(title, select, value, limit, records) for title, select, value, limit in TARGETS_ISSUE17),
    ]


# -- Markdown -----------------------------------------------------------------------------------
def _ms(v):
    if v is None:
        return "–"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def _x(v):
    return "–" if v is None else f"{v:.2f}"


def _mib(v):
    return "–" if v is None else f"{v / MIB:.1f}"


def results_table(records: list[dict]) -> list[str]:
    records = [r for r in records if r.get("family") != "dense"]  # their own table (cases_dense)
    peers = [p for p in PEER_ORDER if any(p in r["peers"] for r in records)]
    head = ["case", "ours ms", "algo"] + [h for p in peers for h in (f"{PEER_TITLE[p]} ms", f"x{PEER_TITLE[p]}")] + ["GFLOP/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        row = [r["case"], _ms(r["ours_ms"]), r.get("algorithm", "")]
        for p in peers:
            q = r["peers"].get(p)
            row += [_ms(q["ms"]), _x(q["ratio"])] if q else ["–", "–"]
        row.append("–" if r.get("gflops") is None else f"{r['gflops']:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def algorithms_table(records: list[dict]) -> list[str]:
    rows = [r for r in records if "algorithms" in r]
    if not rows:
        return []
    names = ("im2col", "winograd4", "winograd2", "direct", "smallmap")
    head = ["case", "auto picked", "cost model picked", *(f"{n} ms" for n in names), "fastest", "auto / fastest",
            "PyTorch ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        a = r["algorithms"]
        best = r["best_algorithm"]
        t = r["peers"].get("torch", {}).get("ms")
        cells = [_ms(a[name]["ms"]) if name in a else "–" for name in names]
        lines.append(f"| {r['case']} | {r['algorithm']} | {r.get('cost_model_algorithm', '–')} | {' | '.join(cells)} "
                     f"| {best} | {r['ours_ms'] / a[best]['ms']:.2f} | {_ms(t)} |")
    return lines


def memory_table(records: list[dict]) -> list[str]:
    rows = [r for r in records if r.get("memory")]
    if not rows:
        return []
    lines = ["| case | method | ours peak MiB (weights + traced) | bound MiB (1.25x) | ours RSS growth MiB | "
             "PyTorch RSS growth MiB | ONNX RT RSS growth MiB | weights MiB |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["memory"]
        o = m.get("ours", {})
        lines.append(
            f"| {r['case']} | {m.get('method', '–')} | {_mib(m.get('ours_peak_bytes'))} | "
            f"{_mib(m.get('bound', {}).get('bound_bytes'))} | {_mib(o.get('rss_growth'))} | "
            f"{_mib(m.get('torch', {}).get('rss_growth'))} | {_mib(m.get('onnxruntime', {}).get('rss_growth'))} | "
            f"{_mib(o.get('weights_bytes'))} |"
        )
    return lines


def _met_cell(t: dict) -> str:
    """``met/cases``, or for an aggregate target its value and case count."""
    if t["met"] is None:
        return f"geomean {_x(t.get('value'))} of {t['cases']}"
    return f"{t['met']}/{t['cases']}"


def _miss_line(t: dict) -> str | None:
    """The Misses line of a target: its failing cases, or an aggregate's value against its limit."""
    if t["met"] is None and t["status"] == "MISS":
        return f"- {t['target']}: geometric mean {t['value']:.2f} over {t['cases']} cases (limit {t['limit']:.2f})"
    if t["misses"]:
        return f"- {t['target']}: " + "; ".join(f"{m['case']} {m['value']:.2f}" for m in t["misses"])
    return None


def targets_block(targets: list[dict]) -> list[str]:
    """A target table (status, cases met, worst case), then every miss."""
    lines = ["| target | status | met | worst case (ratio) |", "|---|---|---|---|"]
    for t in targets:
        w = t["worst"]
        lines.append(f"| {t['target']} | **{t['status']}** | {_met_cell(t)} | "
                     f"{(w['case'] + ' (' + format(w['value'], '.2f') + ')') if w else '–'} |")
    miss_lines = [line for line in map(_miss_line, targets) if line]
    if miss_lines:
        lines += ["", "Misses:", ""] + miss_lines
    return lines


def markdown(meta: dict, records: list[dict], targets: list[dict], targets_issue17: list[dict] | None = None) -> str:
    """The report; ``targets_issue17`` defaults to :func:`evaluate_issue17` of ``records``."""
    if targets_issue17 is None:
        targets_issue17 = evaluate_issue17(records, quick_run=bool(meta.get("quick")))
    e = meta["environment"]
    out = [
        f"# convnet benchmarks ({'quick' if meta['quick'] else 'full'} run, {meta['started']})",
        "",
        f"- machine: {machine_line(e)}; {meta['threads']} threads for every library",
        f"- numpy {e.get('numpy')}, torch {e.get('torch')} (threads {e.get('torch_threads')}, "
        f"capability {e.get('torch_cpu_capability', '?')}), onnxruntime {e.get('onnxruntime')}, mygrad {e.get('mygrad')}",
        f"- BLAS: {meta['blas']}",
        f"- unset for this run: {e.get('unset_for_this_run') or 'nothing'}; "
        f"OPENBLAS_THREAD_TIMEOUT={e.get('env', {}).get('OPENBLAS_THREAD_TIMEOUT')} (as `convnet.runtime.tune()` sets it); "
        f"glibc malloc for every library in this process: {_malloc_line(e.get('malloc') or {})}",
        f"- sgemm roofline (2048² float32 a @ b): {meta['roofline_gflops_start']:.1f} GFLOP/s at the start, "
        f"{meta['roofline_gflops_end']:.1f} at the end",
        f"- timing: min (and median, in the JSON) over {meta['settings'].get('rounds', 1)} block(s) per function "
        f"(the order reversed each round), each of up to {meta['settings']['max_repeats']} repeats after "
        f"{meta['settings']['warmup']} warm-up, one function at a time; ratio = ours / peer (< 1: we are faster); "
        f"run took {meta['duration_s']:.0f} s",
        "",
        "## Results",
        "",
        *results_table(records),
    ]
    alg = algorithms_table(records)
    if alg:
        out += ["", "## 3x3 stride-1 layers: every algorithm", "", *alg]
    mem = memory_table(records)
    if mem:
        out += ["", "## Memory (end to end)", "", *mem]
    from .cases_dense import table as dense_table

    dense = dense_table(records)
    if dense:
        out += ["", "## Dense evaluation vs a loop over crops (issue 5)", "", *dense]
    out += ["", "## Targets (issue 6)", "", *targets_block(targets)]
    out += ["", "## Targets (issue 17)", "", *targets_block(targets_issue17), ""]
    return "\n".join(out)


def write(path_prefix: str, meta: dict, records: list[dict], targets: list[dict],
          targets_issue17: list[dict] | None = None) -> tuple[str, str]:
    """``PREFIX.md`` and ``PREFIX.json`` (``targets``: issue 6's, kept under that key; ``targets_issue17``)."""
    if targets_issue17 is None:
        targets_issue17 = evaluate_issue17(records, quick_run=bool(meta.get("quick")))
    md = markdown(meta, records, targets, targets_issue17)
    with open(path_prefix + ".md", "w") as f:
        f.write(md)
    with open(path_prefix + ".json", "w") as f:
        json.dump({"meta": meta, "records": records, "targets": targets, "targets_issue17": targets_issue17}, f,
                  indent=1, default=str)
    return path_prefix + ".md", path_prefix + ".json"
