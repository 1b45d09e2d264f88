"""The two-way split of the compiled kernels (ops/kernels/parallel.py): every index once, errors
reach the caller, small work stays on one thread, several calling threads at once."""
import threading

import numpy as np
import pytest

pytest.importorskip("numba")
from convnet.ops.kernels import parallel  # noqa: E402


def _recorder():
    seen, threads = [], set()

    def fn(out, start, stop):
        threads.add(threading.get_ident())
        seen.extend(range(start, stop))
        out[start:stop] += 1

    return fn, seen, threads


@pytest.mark.parametrize("total, offset", [(1, 0), (2, 0), (7, 3), (1000, 11)])
def test_every_index_once(monkeypatch, total, offset):
    monkeypatch.setenv("CONVNET_THREADS", "2")
    fn, seen, threads = _recorder()
    out = np.zeros(offset + total, dtype=np.int64)
    parallel.halves(fn, total, out, offset=offset)
    assert sorted(seen) == list(range(offset, offset + total))
    assert (out[offset:] == 1).all() and (out[:offset] == 0).all()
    assert len(threads) == (2 if total >= 2 else 1)


def test_small_work_stays_on_the_calling_thread(monkeypatch):
    monkeypatch.setenv("CONVNET_THREADS", "2")
    fn, _, threads = _recorder()
    parallel.halves(fn, 100, np.zeros(100, dtype=np.int64), work=parallel.SPLIT_MIN_WORK - 1)
    assert threads == {threading.get_ident()}
    fn, _, threads = _recorder()
    parallel.halves(fn, 100, np.zeros(100, dtype=np.int64), work=parallel.SPLIT_MIN_WORK)
    assert len(threads) == 2


def test_one_thread_when_asked(monkeypatch):
    monkeypatch.setenv("CONVNET_THREADS", "1")
    fn, _, threads = _recorder()
    parallel.halves(fn, 100, np.zeros(100, dtype=np.int64))
    assert threads == {threading.get_ident()}


def test_the_helpers_error_reaches_the_caller(monkeypatch):
    monkeypatch.setenv("CONVNET_THREADS", "2")
    main = threading.get_ident()

    def fn(start, stop):
        if threading.get_ident() != main:
            raise ValueError(f"helper failed on {start}..{stop}")

    with pytest.raises(ValueError, match="helper failed on 5..10"):
        parallel.halves(fn, 10)
    parallel.halves(lambda start, stop: None, 10)  # and the helper still runs jobs afterwards


def test_callers_on_several_threads(monkeypatch):
    monkeypatch.setenv("CONVNET_THREADS", "2")
    outs = [np.zeros(5000, dtype=np.int64) for _ in range(4)]

    def fn(out, start, stop):
        out[start:stop] += np.arange(start, stop)

    def caller(out):
        for _ in range(50):
            parallel.halves(fn, out.size, out)

    ts = [threading.Thread(target=caller, args=(o,)) for o in outs]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts)
    for o in outs:
        np.testing.assert_array_equal(o, 50 * np.arange(o.size))


def test_poll_sees_another_threads_write_and_times_out():
    import time

    poll = parallel._poller()
    counter = np.zeros(2, dtype=np.int64)
    t0 = time.perf_counter()
    assert not poll(counter, 0, 0.002)
    assert time.perf_counter() - t0 < 1.0  # a time limit, not a count of rounds

    def write():
        time.sleep(0.01)
        counter[0] = 1

    writer = threading.Thread(target=write)
    writer.start()
    t0 = time.perf_counter()
    assert poll(counter, 0, 5.0)  # the load is repeated every round: the write is seen
    assert time.perf_counter() - t0 < 2.5
    writer.join()
