"""Run the benchmark suite: ``python -m benchmarks.run [--quick]``.

Writes ``benchmarks/results/latest.md`` and ``latest.json`` (``--out`` to
change the prefix) and prints the Markdown to stdout.  See docs/benchmarks.md.

Thread counts are pinned (``OMP_NUM_THREADS`` and friends = 2) and
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are unset for this process
before NumPy or PyTorch is imported: only the standard library is imported at
the top of this file, everything else inside :func:`main` after
:func:`benchmarks.env.configure`.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

from . import env

FAMILIES = ("conv", "layers", "e2e", "interop", "dense")
PEERS = ("torch", "onnxruntime", "mygrad")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description="convnet's benchmark suite")
    p.add_argument("--quick", action="store_true", help="a representative subset, under 3 minutes on 2 cores")
    p.add_argument("--only", default=",".join(FAMILIES),
                   help=f"comma-separated case families to run (default: all of {','.join(FAMILIES)})")
    p.add_argument("--peers", default=",".join(PEERS),
                   help="comma-separated peers to compare with (default: all installed); '' for none")
    p.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    p.add_argument("--memory", choices=("auto", "probe", "tracemalloc", "none"), default="auto",
                   help="end-to-end memory: auto = tracemalloc (quick) or fresh-process probes (full)")
    p.add_argument("--out", default=None, help="output prefix (default benchmarks/results/latest)")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="do not unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for this run")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    env.configure(args.threads, keep_openblas_vars=args.keep_openblas_env)
    env.ensure_importable()
    # numerical imports only from here on
    from . import cases_conv, cases_dense, cases_e2e, cases_interop, cases_layers, peers, report, timing

    families = [f for f in args.only.split(",") if f]
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        print(f"unknown family {bad}; expected some of {FAMILIES}", file=sys.stderr)
        return 2
    wanted = [p for p in args.peers.split(",") if p]
    peer_names = tuple(p for p in wanted if peers.available(p))
    missing = sorted(set(wanted) - set(peer_names))
    if "onnxruntime" in peer_names and "torch" not in peer_names:
        peer_names = tuple(p for p in peer_names if p != "onnxruntime")  # exported from the PyTorch model
    settings = timing.QUICK if args.quick else timing.FULL
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731 - progress; the table goes to stdout

    started = datetime.datetime.now().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    environment = env.describe()
    log(f"BLAS: {env.blas_kernel(environment)}; peers: {', '.join(peer_names) or 'none'}"
        + (f" (not installed: {', '.join(missing)})" if missing else ""))
    roof0 = timing.sgemm_roofline()
    log(f"sgemm roofline: {roof0:.1f} GFLOP/s")
    records = []
    if "conv" in families:
        records += cases_conv.run(settings, quick=args.quick, peer_names=peer_names, log=log)
    if "layers" in families:
        records += cases_layers.run(settings, quick=args.quick, peer_names=peer_names, log=log)
    if "e2e" in families:
        records += cases_e2e.run(settings, quick=args.quick, peer_names=peer_names, log=log, memory=args.memory)
    if "interop" in families:
        records += cases_interop.run(settings, quick=args.quick, peer_names=peer_names, log=log)
    if "dense" in families:
        records += cases_dense.run(settings, quick=args.quick, log=log)
    roof1 = timing.sgemm_roofline()
    records = report.finalize(records)
    targets = report.evaluate_targets(records)
    targets_issue17 = report.evaluate_issue17(records, quick_run=args.quick)
    meta = {
        "started": started,
        "quick": args.quick,
        "families": families,
        "peers": list(peer_names),
        "peers_missing": missing,
        "threads": args.threads,
        "settings": settings.__dict__,
        "roofline_gflops_start": roof0,
        "roofline_gflops_end": roof1,
        "roofline_gflops": max(roof0, roof1),
        "blas": env.blas_kernel(environment),
        "environment": environment,
        "duration_s": time.perf_counter() - t0,
    }
    prefix = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "latest")
    os.makedirs(os.path.dirname(os.path.abspath(prefix)) or ".", exist_ok=True)
    md_path, json_path = report.write(prefix, meta, records, targets, targets_issue17)
    print(report.markdown(meta, records, targets, targets_issue17))
    log(f"wrote {md_path} and {json_path} ({meta['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
