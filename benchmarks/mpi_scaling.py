"""Data parallel on this machine: 2 ranks × 1 thread against 1 rank × 2 threads, and the scaling model.

    python -m benchmarks.mpi_scaling                    # the digits net and resnet20_cifar
    python -m benchmarks.mpi_scaling --steps 3 --warmup 1 --models digits   # a quick check that it runs

For each net it times training steps (the trainer's own step: forward, backward, the gradient
allreduce, the update) in three jobs — 1 rank × 1 thread, 1 rank × 2 threads, and
``mpiexec -n 2`` × 1 thread — and in the 2-rank job the time spent inside collectives (the
communication share of a step, waiting for the slower rank included) and a bare Allreduce of
the gradient buffer.  The scaling model (convnet.analysis.scaling) is then checked against
the measurement: it predicts the 2-rank step from the 1-thread compute rate and the bare
Allreduce's bandwidth.  Nothing here is asserted; the table names the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODELS = {"digits": {"data": "digits", "batch": 64}, "resnet20_cifar": {"data": "random32", "batch": 64}}


def _worker(args) -> None:
    from benchmarks.env import configure

    configure(args.threads)
    import numpy as np

    from convnet.analysis.scaling import estimate_scaling
    from convnet.data import load as load_data
    from convnet.data.dataset import Dataset
    from convnet.distributed import get_world, shard_bounds
    from convnet.train.config import TrainConfig
    from convnet.train.trainer import Trainer

    world = get_world()
    spec = MODELS[args.model]
    if spec["data"] == "digits":
        train, test = load_data("digits")
        config = TrainConfig(batch=spec["batch"], seed=0)
    else:
        rng = np.random.default_rng(0)
        n = spec["batch"] * 4
        train = Dataset(rng.random((n, 32, 32, 3), dtype=np.float32), (np.arange(n) % 10).astype(np.int64),
                        tuple(str(i) for i in range(10)), "random32")
        test = train
        config = TrainConfig(model=args.model, batch=spec["batch"], seed=0, optimizer="momentum", lr=0.01)
    import tempfile

    out = tempfile.mkdtemp(prefix="convnet-mpi-bench-")  # the trainer writes nothing here: no epoch ends
    trainer = Trainer(config, train=train, val=None, test=test, out_dir=out, quiet=True, world=world)
    spent = [0.0]
    if world.active:  # time every collective of the step
        plain = world.allreduce_

        def timed(buf, *, what="allreduce"):
            t = time.perf_counter()
            out = plain(buf, what=what)
            spent[0] += time.perf_counter() - t
            return out

        world.allreduce_ = timed
    b = config.batch
    idx = np.arange(b) % len(train)
    lo, hi = shard_bounds(b, world.size, world.rank)
    xb, yb = trainer.prepare(train.x[idx[lo:hi]]), train.y[idx[lo:hi]]
    times, comm = [], []
    for i in range(args.warmup + args.steps):
        spent[0] = 0.0
        world.barrier()
        t = time.perf_counter()
        trainer._step(xb, yb, start=lo, total=b)
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
            comm.append(spent[0])
    bare = []
    if world.active:
        buf = trainer.grad_buffer.buf.copy()
        for _ in range(5):
            world.barrier()
            t = time.perf_counter()
            world.comm.Allreduce(world.mpi.IN_PLACE, buf, op=world.mpi.SUM)
            bare.append(time.perf_counter() - t)
    est = estimate_scaling(trainer.net, ranks=1, batch=b, bandwidth=1e9, latency=5e-6, flops_per_s=1e9)
    if world.is_root:
        from benchmarks.env import cpu_description, machine_line

        print(json.dumps({"step_s": float(np.median(times)), "comm_s": float(np.median(comm)),
                          "bare_allreduce_s": float(min(bare)) if bare else None,
                          "gradient_bytes": est.gradient_bytes, "flops_per_step": est.compute_s * 1e9,
                          "batch": b, "ranks": world.size, "threads": args.threads,
                          "machine": machine_line(cpu_description())}))


def _job(model, *, ranks, threads, args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.mpi_scaling", "--worker", "--model", model, "--threads", str(threads),
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = {**os.environ, "CONVNET_THREADS": str(threads)}
    if ranks > 1:
        cmd = [args.mpiexec, "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mpi_scaling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--steps", type=int, default=20, help="timed steps per job (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--mpiexec", default="mpiexec", help="the MPI launcher")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    from convnet.analysis.scaling import ring_allreduce_seconds

    rows = []
    for model in args.models.split(","):
        one1 = _job(model, ranks=1, threads=1, args=args)
        one2 = _job(model, ranks=1, threads=2, args=args)
        two = _job(model, ranks=2, threads=1, args=args)
        rate = one1["flops_per_step"] / one1["step_s"]  # FLOP/s of one rank at one thread, in training
        nbytes = two["gradient_bytes"]
        # bandwidth that makes the ring formula give the bare Allreduce time (latency 5 us)
        bare = two["bare_allreduce_s"]
        bandwidth = nbytes / max(bare - 2 * 5e-6, 1e-9)  # 2(N-1)/N = 1 at N = 2
        predicted = (one1["flops_per_step"] / 2 / rate
                     + ring_allreduce_seconds(nbytes, 2, bandwidth=bandwidth, latency=5e-6))
        rows.append((model, one2, two, one1, predicted, bandwidth))
    machine = rows[0][1]["machine"] if rows else ""
    print(f"Data parallel on {machine}")
    print(f"{'net':<16}{'batch':>6}{'1r×1t st/s':>12}{'1r×2t st/s':>12}{'2r×1t st/s':>12}{'2r/1r×2t':>10}"
          f"{'comm share':>12}{'gradients':>12}{'bare allred':>13}{'model step':>12}{'measured':>10}")
    for model, one2, two, one1, predicted, bandwidth in rows:
        print(f"{model:<16}{two['batch']:>6}{1 / one1['step_s']:>12.2f}{1 / one2['step_s']:>12.2f}"
              f"{1 / two['step_s']:>12.2f}{one2['step_s'] / two['step_s']:>9.2f}x"
              f"{100 * two['comm_s'] / two['step_s']:>11.0f}%{two['gradient_bytes'] / 2**20:>9.2f} MiB"
              f"{1e3 * two['bare_allreduce_s']:>10.2f} ms{1e3 * predicted:>9.1f} ms{1e3 * two['step_s']:>7.1f} ms")
    print("model step: the scaling model's 2-rank step from the 1-rank × 1-thread FLOP rate and the bare "
          "Allreduce's bandwidth (latency 5 us); measured: the 2-rank step (median).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
