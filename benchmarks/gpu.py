"""The GPU benchmark (issue 20): ours on CuPy against PyTorch CUDA, in the same run, on the same GPU.

* ``vgg16`` and ``resnet18`` inference at 224×224, batch 16;
* ``resnet20_cifar`` (batch 128, 32×32) and ``resnet18`` (batch 32, 224×224) training steps:
  forward, softmax cross-entropy, backward, SGD momentum (lr 0.01, momentum 0.9).

Both nets hold the same weights (ours translated to PyTorch, :func:`benchmarks.peers.torch_model`),
PyTorch runs channels_last in float32 (TF32 off, cuDNN benchmark on).  Each case: 3 warm-up calls,
then the median of 10, each timed to a device synchronisation.  Run: ``python -m benchmarks.gpu
[--out FILE.json]``; exits with a message (status 2) when there is no CuPy or no GPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

#: (zoo name, task, batch)
CASES = [("vgg16", "infer", 16), ("resnet18", "infer", 16), ("resnet20_cifar", "train", 128), ("resnet18", "train", 32)]


def _gpu():
    try:
        import cupy as cp

        if cp.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as exc:
        print(f"benchmarks.gpu: needs CuPy (pip install convnet[gpu]) and a CUDA GPU; {type(exc).__name__}: {exc}",
              file=sys.stderr)
        sys.exit(2)
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return cp, {"gpu": name, "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(), "cupy": cp.__version__}


def _time(fn, sync, repeat=10, warmup=3) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _ours(cp, net, task, x, y):
    """The CPU benchmark's inference call or training step, on device arrays."""
    from .cases_e2e import ours_infer, ours_train

    xg, yg = cp.asarray(x), cp.asarray(y)
    return ours_infer(net, xg) if task == "infer" else ours_train(net, xg, yg)


def _torch(torch, model, task, x, y):
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).cuda().contiguous(
        memory_format=torch.channels_last)
    yt = torch.from_numpy(y.astype(np.int64)).cuda()
    if task == "infer":
        model.eval()

        def run():
            with torch.inference_mode():
                return model(xt)

        return run
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()

    return step


def run(out=None) -> list[dict]:
    cp, env = _gpu()
    from convnet import zoo

    from . import peers

    torch = peers.torch_or_none()
    cuda = torch is not None and torch.cuda.is_available()
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        env["torch"] = torch.__version__
    print(f"GPU: {env['gpu']} ({env['memory_gib']} GiB), CuPy {env['cupy']}, "
          f"PyTorch {env.get('torch', 'without CUDA: not compared')}", flush=True)
    records = []
    for name, task, batch in CASES:
        host = zoo.get(name).build(rng=np.random.default_rng(0))
        rng = np.random.default_rng(1)
        x = rng.standard_normal((batch, *host.input_shape), dtype=np.float32)
        y = rng.integers(0, host.output_shape()[-1], size=batch)
        rec = {"case": name, "task": task, "batch": batch, **env}
        if cuda:
            model = peers.torch_model(host).cuda().to(memory_format=torch.channels_last)
            rec["torch_s"] = _time(_torch(torch, model, task, x, y), torch.cuda.synchronize)
            del model
            torch.cuda.empty_cache()
        net = host.to("gpu")
        rec["ours_s"] = _time(_ours(cp, net, task, x, y), cp.cuda.Device().synchronize)
        rec["ours_img_s"] = batch / rec["ours_s"]
        if "torch_s" in rec:
            rec["ours_over_torch"] = rec["ours_s"] / rec["torch_s"]
        records.append(rec)
        print(f"{name:15s} {task:5s} N={batch:<4d} ours {rec['ours_s'] * 1e3:9.2f} ms"
              + (f"   torch {rec['torch_s'] * 1e3:8.2f} ms   ours/torch {rec['ours_over_torch']:6.2f}x" if cuda else ""),
              flush=True)
        del net, host
        cp.get_default_memory_pool().free_all_blocks()
    if out:
        with open(out, "w") as f:
            json.dump(records, f, indent=1)
        print(f"wrote {out}")
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, help="also write the records as JSON here")
    args = p.parse_args(argv)
    run(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
