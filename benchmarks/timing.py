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
    #: blocks per function in :func:`measure_group`, the order of the functions reversed each round
    rounds: int = 1


QUICK = Settings(warmup=1, min_repeats=2, max_repeats=5, budget_s=0.35)
#: two rounds: on these shared 2-core machines a slow phase lasting seconds moved single-block
#: ratios by 25-40 % between runs minutes apart
FULL = Settings(warmup=1, min_repeats=3, max_repeats=10, budget_s=1.0, rounds=2)


@dataclass(frozen=True)
class Timing:
    min_ms: float
    median_ms: float
    repeats: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure(fn, settings: Settings) -> Timing:
    """Call ``fn()`` ``warmup`` times, then time it repeatedly (wall clock, ``perf_counter``)."""
    return _timing(_samples(fn, settings))


def _timing(times) -> Timing:
    return Timing(1e3 * min(times), 1e3 * statistics.median(times), len(times))


def _samples(fn, settings: Settings) -> list:
    """One block: the warm-up calls, then the timed repeats (seconds)."""
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
    return times


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
    ``settle_s`` that lets the previous library's worker threads go idle; with
    ``settings.rounds`` > 1 every function gets that many blocks, the order reversed
    each round (ours, peer, peer, ours, ...), and its Timing pools them: the minimum
    over all blocks, the median of all repeats.
    Interleaving the functions call by call was tried and is unfair: after
    each call OpenBLAS's workers busy-wait for about 0.1 s (its
    ``THREAD_TIMEOUT``), as do OpenMP's and ONNX Runtime's spinning pools for
    shorter times, so on 2 cores the function that runs next loses a core —
    PyTorch measured up to 2x slower right after one of our calls.
    """
    samples = {name: [] for name in fns}
    for r in range(max(1, settings.rounds)):
        for name in (list(fns) if r % 2 == 0 else list(reversed(fns))):
            time.sleep(settle_s)
            samples[name] += _samples(fns[name], settings)
    return {name: _timing(times) for name, times in samples.items()}
