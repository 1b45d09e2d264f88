"""Peak memory of one end-to-end case, measured in a fresh process (``python -m benchmarks.memprobe``).

The probe builds the model (ours; for PyTorch the same net translated by
:func:`benchmarks.peers.torch_model`; for ONNX Runtime a session over the file
the parent exported), creates the input, warms BLAS up on a tiny product, then
records the resident set (``VmRSS``), resets the kernel's high-water mark
(``/proc/self/clear_refs``) and runs the case twice (a first call and a steady
one).  It prints one JSON line:

* ``rss_before`` / ``rss_peak``: bytes, before the first call and the highest
  resident set during the two calls; ``rss_growth`` = their difference (what
  the library allocated to run the case, arena and caches included);
* ``tracemalloc_peak`` (ours only): the peak of NumPy's traced allocations
  during a third call — activations, caches, workspace, temporaries —
  exactly, without allocator slack;
* ``weights_bytes``: the model's parameters and buffers.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import env


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lib", choices=("ours", "torch", "onnxruntime"), required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--task", choices=("infer", "train"), required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--onnx", help="the exported model, for --lib onnxruntime")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    env.configure(args.threads)
    env.ensure_importable()
    import gc
    import tracemalloc

    import numpy as np

    from . import cases_e2e, peers

    rng = np.random.default_rng(1)
    out = {"lib": args.lib, "model": args.model, "task": args.task, "batch": args.batch}
    if args.lib == "onnxruntime":
        sess, _ = peers.onnx_session(None, None, threads=args.threads, path=args.onnx)
        shape = [args.batch if isinstance(d, str) else d for d in sess.get_inputs()[0].shape]
        shape[0] = args.batch
        xo = rng.standard_normal(shape, dtype=np.float32)
        fn = lambda: sess.run(None, {"x": xo})  # noqa: E731
        out["weights_bytes"] = None
    else:
        net = cases_e2e.build_net(args.model)
        x, labels = cases_e2e.make_input(net, args.batch)
        if args.lib == "ours":
            fn = cases_e2e.ours_infer(net, x) if args.task == "infer" else cases_e2e.ours_train(net, x, labels)
            out["weights_bytes"] = cases_e2e.weight_bytes(net)
        else:
            model = peers.torch_model(net)
            fn = cases_e2e.torch_infer(model, x) if args.task == "infer" else cases_e2e.torch_train(model, x, labels)
            out["weights_bytes"] = int(sum(t.numel() * t.element_size() for t in model.state_dict().values()))
            del net
    a = np.ones((64, 64), dtype=np.float32)
    a @ a  # BLAS buffers exist before the baseline
    gc.collect()
    out["rss_before"] = _status("VmRSS")
    out["hwm_reset"] = _reset_peak()
    fn()
    fn()
    out["rss_peak"] = _status("VmHWM")
    out["rss_growth"] = out["rss_peak"] - out["rss_before"]
    if args.lib == "ours":
        gc.collect()
        tracemalloc.start()
        fn()
        out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
