"""Two-way work splitting for the compiled kernels.

The kernels release the GIL, so the caller's thread runs one half of a loop and one helper
thread the other.  numba's own thread pool is not used: its workers and OpenBLAS's fought
over the two cores (see :mod:`convnet.ops.kernels`).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

_helper = None
_helper_pid = None
#: ``os.cpu_count()`` once (8 µs a call here, ~80 calls per ResNet-20 training step)
_CPUS = os.cpu_count() or 1


def threads() -> int:
    """Threads the kernels split their work over: ``CONVNET_THREADS`` if set (1 or 2), else 2
    when the machine has two cores or more."""
    env = os.environ.get("CONVNET_THREADS")
    if env and env.isdigit() and int(env) >= 1:
        return min(int(env), 2)
    return 2 if _CPUS >= 2 else 1


def halves(fn, total: int, *args, offset: int = 0):
    """``fn(*args, start, stop)`` over ``offset .. offset + total``: split in two when
    :func:`threads` is 2."""
    global _helper, _helper_pid
    if threads() < 2 or total < 2:
        fn(*args, offset, offset + total)
        return
    if _helper is None or _helper_pid != os.getpid():  # a forked child has no helper thread: start one
        _helper, _helper_pid = ThreadPoolExecutor(1, thread_name_prefix="convnet-kernels"), os.getpid()
    half = offset + total // 2
    other = _helper.submit(fn, *args, half, offset + total)
    try:
        fn(*args, offset, half)
    finally:
        other.result()
