"""Two-way work splitting for the compiled kernels.

The kernels release the GIL, so the caller's thread runs one half of a loop and one helper
thread the other (:func:`halves`).  numba's own thread pool is not used: its workers and
OpenBLAS's fought over the two cores (see :mod:`convnet.ops.kernels`).

A hand-off costs more than it looks: a helper thread asleep on a lock takes a long time to
wake up (on the virtual machines of docs/tuning.md, longer than a small kernel runs).  So:

* work below :data:`SPLIT_MIN_WORK` multiply-adds is not split at all (about where two
  halves started to beat one);
* the helper stays awake for :data:`SPIN_S` after each half, polling (with ``sched_yield``,
  so a runnable OpenBLAS worker gets the core first) for the next one instead of sleeping
  on the queue; the caller likewise polls for the helper's half before it blocks.  The
  polling runs in compiled code without the GIL.
"""
from __future__ import annotations

import ctypes
import os
import queue
import threading
import time

import numpy as np

#: ``os.cpu_count()`` once (it reads the system's CPU list at every call; a training step splits
#: dozens of kernels)
_CPUS = os.cpu_count() or 1
#: multiply-adds (or element operations) below which :func:`halves` runs the whole range here
SPLIT_MIN_WORK = 16_000_000
#: memory-bound passes (batch norm, ReLU, max pooling) over at least this many values are split
#: in two by :func:`halves_if_large` (shorter passes end before the helper would have woken)
SPLIT_MIN_VALUES = 1 << 18

#: how long the helper, and a caller waiting for it, poll before they sleep (seconds)
SPIN_S = 0.002


def threads() -> int:
    """Threads the kernels split their work over: ``CONVNET_THREADS`` if set (1 or 2), else 2
    when the machine has two cores or more."""
    env = os.environ.get("CONVNET_THREADS")
    if env and env.isdigit() and int(env) >= 1:
        return min(int(env), 2)
    return 2 if _CPUS >= 2 else 1


def _make_poll():
    """A compiled ``poll(counter, value, seconds) -> bool``: True as soon as ``counter[0] != value``,
    False once ``seconds`` have passed (``CLOCK_MONOTONIC``, read every 16 rounds); the GIL is
    released and every round calls ``sched_yield`` — an opaque call, so the counter is loaded
    again each round, and a runnable thread on this core (an OpenBLAS worker) goes first.
    None without numba, ``sched_yield`` or ``clock_gettime`` (Windows): callers then block."""
    try:
        import numba
    except Exception:  # pragma: no cover - numba missing or broken: the kernels are off anyway
        return None
    try:
        libc = ctypes.CDLL(None)
        yield_cpu, clock_gettime = libc.sched_yield, libc.clock_gettime
    except Exception:  # pragma: no cover - no C library by that name (Windows)
        return None
    yield_cpu.restype, yield_cpu.argtypes = ctypes.c_int, []
    clock_gettime.restype, clock_gettime.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_void_p]
    monotonic = time.CLOCK_MONOTONIC

    @numba.njit(nogil=True, cache=False)
    def _wait_change(counter, value, deadline_ns, ts):  # pragma: no cover - compiled
        # ts: a struct timespec (seconds, nanoseconds) made once per thread — no allocation here:
        # numba allocates through PyMem_RawMalloc, which tracemalloc hooks, and a raw allocation
        # on this thread while the main thread ran tracemalloc.stop() crashed CPython 3.11 once
        rounds = 0
        while counter[0] == value:
            yield_cpu()
            rounds += 1
            if rounds % 16 == 0:
                clock_gettime(monotonic, ts.ctypes.data)
                if ts[0] * 1_000_000_000 + ts[1] >= deadline_ns:
                    return counter[0] != value
        return True

    local = threading.local()

    def poll(counter, value, seconds):
        ts = getattr(local, "ts", None)
        if ts is None:
            ts = local.ts = np.empty(2, dtype=np.int64)
        return _wait_change(counter, value, time.clock_gettime_ns(monotonic) + int(seconds * 1e9), ts)

    poll(np.zeros(1, dtype=np.int64), 0, 0.0)  # compiles
    return poll


_poll = None
_lock = threading.Lock()  # creating the poll function and the helper: once


def _poller():
    global _poll
    if _poll is None:
        with _lock:
            if _poll is None:
                _poll = _make_poll() or (lambda counter, value, seconds: counter[0] != value)
    return _poll


class _Job:
    __slots__ = ("fn", "args", "done", "event", "error")

    def __init__(self, fn, args):
        self.fn, self.args = fn, args
        self.done = np.zeros(1, dtype=np.int64)  # 1 when finished (polled by the caller)
        self.event = threading.Event()
        self.error = None

    def run(self):
        try:
            self.fn(*self.args)
        except BaseException as exc:  # handed to the caller
            self.error = exc
        self.done[0] = 1
        self.event.set()

    def wait(self, poll):
        if not poll(self.done, 0, SPIN_S):
            self.event.wait()
        if self.error is not None:
            error, self.error = self.error, None  # no job -> error -> traceback -> job cycle left
            raise error


class _Helper:
    """One daemon thread running posted jobs; it polls ``posted`` for :data:`SPIN_S` after each
    job before it sleeps on the queue (``posted[0]`` counts the jobs handed to it)."""

    def __init__(self, poll):
        self.poll = poll
        self.jobs = queue.SimpleQueue()
        self.posted = np.zeros(1, dtype=np.int64)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="convnet-kernels", daemon=True)
        self.thread.start()

    def post(self, fn, *args) -> _Job:
        job = _Job(fn, args)
        with self.lock:  # callers on several threads: one count per job, in order
            self.jobs.put(job)
            self.posted[0] += 1
        return job

    def _loop(self):
        taken = 0
        while True:
            job = self.jobs.get()
            taken += 1
            job.run()
            job = None
            self.poll(self.posted, taken, SPIN_S)  # stay awake for the next job a while


_helper = None
_helper_pid = None


def _get_helper() -> _Helper:
    global _helper, _helper_pid
    if _helper is None or _helper_pid != os.getpid():  # a forked child has no helper thread: start one
        poll = _poller()
        with _lock:
            if _helper is None or _helper_pid != os.getpid():
                _helper, _helper_pid = _Helper(poll), os.getpid()
    return _helper


def splits(total: int, work: float | None = None) -> bool:
    """True when :func:`halves` splits a range of ``total``: two threads, at least two items, and
    ``work`` (the whole call's multiply-adds, if given) at least :data:`SPLIT_MIN_WORK`."""
    return threads() >= 2 and total >= 2 and (work is None or work >= SPLIT_MIN_WORK)


def halves(fn, total: int, *args, offset: int = 0, work: float | None = None):
    """``fn(*args, start, stop)`` over ``offset .. offset + total``: split in two where
    :func:`splits` says so."""
    if not splits(total, work):
        fn(*args, offset, offset + total)
        return
    helper = _get_helper()
    half = offset + total // 2
    other = helper.post(fn, *args, half, offset + total)
    try:
        fn(*args, offset, half)
    finally:
        other.wait(helper.poll)


def halves_if_large(fn, total: int, size: int, *args):
    """``fn(*args, start, stop)`` over ``0 .. total`` for a memory-bound pass over ``size`` values:
    in two halves (:func:`halves`) from :data:`SPLIT_MIN_VALUES` values on, else whole here."""
    if size >= SPLIT_MIN_VALUES:
        halves(fn, total, *args)
    else:
        fn(*args, 0, total)
