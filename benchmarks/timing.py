"""Timing: warm up, then repeat until a time budget or a repeat cap; report min and median.

The number of repeats adapts to the case's duration: fast cases repeat up to
``max_repeats`` times, slow ones stop after ``min_repeats`` once ``budget_s``
is spent.  The minimum is the headline (least disturbed by other work on the
machine); the median is kept beside it.
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Settings:
    warmup: int
    min_repeats: int
    max_repeats: int
    budget_s: float  # time spent repeating, after warm-up, before stopping at min_repeats


QUICK = Settings(warmup=1, min_repeats=2, max_repeats=5, budget_s=0.35)
FULL = Settings(warmup=1, min_repeats=3, max_repeats=10, budget_s=1.0)


@dataclass(frozen=True)
class Timing:
    min_ms: float
    median_ms: float
    repeats: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure(fn, settings: Settings) -> Timing:
    """Call ``fn()`` ``warmup`` times, then time it repeatedly (wall clock, ``perf_counter``)."""
    for _ in range(settings.warmup):
        fn()
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        times = []
        start = time.perf_counter()
        while len(times) < settings.max_repeats and (
            len(times) < settings.min_repeats or time.perf_counter() - start < settings.budget_s
        ):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return Timing(1e3 * min(times), 1e3 * statistics.median(times), len(times))


def sgemm_roofline(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a float32 ``a @ b`` with ``n × n`` operands in NumPy (best of ``repeats``)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    t = measure(lambda: a @ b, Settings(warmup=1, min_repeats=repeats, max_repeats=repeats, budget_s=0.0))
    return 2.0 * n**3 / (t.min_ms * 1e-3) / 1e9


def measure_group(fns: dict, settings: Settings, *, settle_s: float = 0.15) -> dict:
    """Time several functions one after another; return ``{name: Timing}``.

    Each is measured in its own block (warm-up, then repeats), after a pause of
    ``settle_s`` that lets the previous library's worker threads go idle.
    Interleaving the functions call by call was tried and is unfair: after
    each call OpenBLAS's workers busy-wait for about 0.1 s (its
    ``THREAD_TIMEOUT``), as do OpenMP's and ONNX Runtime's spinning pools for
    shorter times, so on 2 cores the function that runs next loses a core —
    PyTorch measured up to 2x slower right after one of our calls.
    """
    out = {}
    for name, fn in fns.items():
        time.sleep(settle_s)
        out[name] = measure(fn, settings)
    return out
