"""The pieces of data parallelism, in one process: sharding, position-based randomness, synchronised
batch norm (two ranks simulated by two threads) against one process with the whole batch, the
gradient buffer, the mismatch check, the watchdog and the scaling model."""
import threading
import time

import numpy as np
import pytest

from convnet.analysis.scaling import estimate_scaling, parse_bandwidth, parse_duration, parse_rate, ring_allreduce_seconds
from convnet.distributed import GradientBuffer, ShardedGenerator, shard_bounds, shard_sizes, sync_batchnorm
from convnet.distributed.consistency import check_same, first_difference
from convnet.distributed.watchdog import Watchdog
from convnet.distributed.world import World
from convnet.errors import ConfigError, DistributedError
from convnet.layers.norm import BatchNorm
from convnet.models import load_model


class ThreadWorld(World):
    """Rank ``rank`` of ``size`` threads that sum through shared slots (a stand-in for MPI)."""

    def __init__(self, rank, shared):
        self.rank, self.size, self.shared = rank, shared["size"], shared

    def allreduce_(self, buf, *, what="allreduce"):
        s = self.shared
        s["slots"][self.rank] = buf.copy()
        s["barrier"].wait()
        total = np.sum(np.stack(s["slots"]).astype(np.float64), axis=0)
        s["barrier"].wait()
        buf[...] = total
        return buf

    def allgather(self, obj, *, what="allgather"):
        s = self.shared
        s["slots"][self.rank] = obj
        s["barrier"].wait()
        out = list(s["slots"])
        s["barrier"].wait()
        return out


def run_ranks(size, fn):
    """``[fn(world) for each rank]``, the ranks running as threads."""
    shared = {"size": size, "slots": [None] * size, "barrier": threading.Barrier(size, timeout=30)}
    results, errors = [None] * size, []

    def body(r):
        try:
            results[r] = fn(ThreadWorld(r, shared))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            shared["barrier"].abort()

    threads = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("n, size", [(10, 4), (7, 2), (3, 3), (64, 8), (5, 1)])
def test_shards_are_contiguous_cover_the_batch_and_differ_by_at_most_one(n, size):
    sizes = shard_sizes(n, size)
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    bounds = [shard_bounds(n, size, r) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def test_shard_arguments_are_checked():
    with pytest.raises(ConfigError, match="size"):
        shard_sizes(4, 0)
    with pytest.raises(ConfigError, match="rank"):
        shard_bounds(4, 2, 2)


def test_sharded_generator_gives_each_position_the_whole_batch_draw():
    whole = np.random.default_rng(5).random((7, 3))
    parts = [ShardedGenerator(np.random.default_rng(5), start=lo, total=7).random((hi - lo, 3))
             for lo, hi in (shard_bounds(7, 2, r) for r in range(2))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def _bn_layer(c, rng):
    layer = BatchNorm()
    layer.build((4, 4, c))
    layer.params["gamma"][...] = rng.uniform(0.5, 2, c)
    layer.params["beta"][...] = rng.standard_normal(c)
    layer.state["running_mean"][...] = rng.standard_normal(c)
    return layer


@pytest.mark.parametrize("n, size", [(6, 2), (7, 2), (9, 3)])
def test_synced_batch_norm_equals_one_process_with_the_whole_batch(rng, n, size):
    """Forward output, running statistics, dx of every slice, and the summed dgamma/dbeta, against the
    whole batch in float64 (uneven slices included)."""
    c = 5
    x = (3 + 2 * rng.standard_normal((n, 4, 4, c)))
    dy = rng.standard_normal(x.shape)
    ref = _bn_layer(c, np.random.default_rng(1))
    ref.dtype = np.float64
    for k in ("gamma", "beta"):
        ref.params[k] = ref.params[k].astype(np.float64)
    ref.state = {k: v.astype(np.float64) for k, v in ref.state.items()}
    y_ref = ref.forward(x, train=True)
    dx_ref = ref.backward(dy)

    def rank(world):
        layer = _bn_layer(c, np.random.default_rng(1))
        layer.dtype = np.float64
        for k in ("gamma", "beta"):
            layer.params[k] = layer.params[k].astype(np.float64)
        layer.state = {k: v.astype(np.float64) for k, v in layer.state.items()}
        layer.stats_reduce = lambda a: world.allreduce_(np.array(a, dtype=np.float64))
        lo, hi = shard_bounds(n, world.size, world.rank)
        y = layer.forward(x[lo:hi], train=True)
        dx = layer.backward(dy[lo:hi])
        return y, dx, dict(layer.grads), dict(layer.state)

    out = run_ranks(size, rank)
    np.testing.assert_allclose(np.concatenate([o[0] for o in out]), y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([o[1] for o in out]), dx_ref, rtol=1e-9, atol=1e-12)
    for k in ("gamma", "beta"):
        np.testing.assert_allclose(sum(o[2][k] for o in out), ref.grads[k], rtol=1e-10)
    for o in out:
        for k in ("running_mean", "running_var"):
            np.testing.assert_allclose(o[3][k], ref.state[k], rtol=1e-10)


def test_sync_batchnorm_is_off_on_one_rank_and_when_asked():
    net = load_model("INPUT[8x8x1] -> CONV3-4 -> BN -> RELU -> FC-10")
    net.build()
    assert sync_batchnorm(net, World()) == 0
    two = World()
    two.size = 2
    assert sync_batchnorm(net, two) == 1 and sync_batchnorm(net, two, enabled=False) == 0


def test_average_state_refreshes_a_folded_conv(monkeypatch):
    """average_state edits the running statistics in place and says so: a CONV that folded the BN
    after it at inference refolds (two ranks with different statistics end up with one answer)."""
    from convnet.distributed.batchnorm_sync import average_state
    from convnet.pattern import parse

    monkeypatch.setenv("CONVNET_PREPACK", "1")
    x = np.random.default_rng(2).standard_normal((2, 6, 6, 3)).astype(np.float32)

    def rank(world):
        net = parse("INPUT[6x6x3] -> CONV3-4 -> BN -> RELU -> GAP").build(rng=np.random.default_rng(0))
        bn = net.layers[1]
        bn.state["running_mean"] = np.full(4, float(world.rank), np.float32)
        assert net.folds()
        net.predict(x)  # folded with this rank's statistics
        average_state(net, world)
        return net.predict(x), net.forward(x, keep_cache=True)

    (a, a_plain), (b, b_plain) = run_ranks(2, rank)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, a_plain, rtol=1e-5, atol=1e-6)


def test_gradient_buffer_sums_gradients_and_extras():
    def rank(world):
        net = load_model("INPUT[4x4x1] -> CONV3-2 -> RELU -> FC-3")
        net.build(rng=np.random.default_rng(0))
        for _, _, g in net.named_parameters():
            g[...] = world.rank + 1
        extras = GradientBuffer(net, extras=2).reduce(world, (0.5 * world.rank, 1))
        return [g.copy() for _, _, g in net.named_parameters()], extras

    out = run_ranks(2, rank)
    for g in out[0][0]:
        assert np.all(g == 3)
    np.testing.assert_allclose(out[1][1], [0.5, 2])


def test_first_difference_names_the_rank_and_the_field():
    same = {"config": {"lr": 0.1, "batch": 8}, "data": {"samples": 10}}
    assert first_difference([same, same, same]) is None
    other = {"config": {"lr": 0.2, "batch": 8}, "data": {"samples": 10}}
    assert first_difference([same, same, other]) == (2, "config.lr", 0.1, 0.2)


def test_check_same_raises_on_every_rank():
    def rank(world):
        try:
            check_same(world, {"config": {"lr": 0.1 if world.rank == 0 else 0.3}})
        except DistributedError as exc:
            return str(exc), exc.exit_code, exc.collective
        return None

    for message, code, collective in run_ranks(2, rank):
        assert "Rank 1" in message and "config.lr" in message and "0.3" in message
        assert code == 10 and collective


def test_watchdog_fires_on_a_collective_that_never_returns():
    fired = []
    dog = Watchdog(0.2, on_expire=lambda what, waited: fired.append((what, waited)))
    with dog.watch("quick"):
        pass
    with dog.watch("stuck allreduce"):
        deadline = time.monotonic() + 5
        while not fired and time.monotonic() < deadline:
            time.sleep(0.02)
    assert fired and fired[0][0] == "stuck allreduce" and fired[0][1] > 0.2


def test_ring_allreduce_formula():
    assert ring_allreduce_seconds(1e9, 1, bandwidth=1e9, latency=1e-5) == 0
    assert ring_allreduce_seconds(1e9, 4, bandwidth=1e9, latency=1e-5) == pytest.approx(1.5 + 6e-5)


def test_units_parse_and_bad_ones_are_named():
    assert parse_bandwidth("25Gb/s") == pytest.approx(25e9 / 8)
    assert parse_bandwidth("3GB/s") == pytest.approx(3e9)
    assert parse_bandwidth("100Mb/s") == pytest.approx(12.5e6)
    assert parse_duration("5us") == pytest.approx(5e-6) and parse_duration("0.1ms") == pytest.approx(1e-4)
    assert parse_rate("100G") == 1e11 and parse_rate("1.5e12") == 1.5e12
    for bad, fn in (("fast", parse_bandwidth), ("25Gb", parse_bandwidth), ("-1GB/s", parse_bandwidth),
                    ("5 parsecs", parse_duration), ("lots", parse_rate)):
        with pytest.raises(ConfigError, match=repr(bad).replace("(", r"\(")):
            fn(bad)


def test_scaling_model_for_vgg16():
    """VGG16: 138.4 M parameters = 553 MB of float32 gradients; at 8 ranks the ring moves 7/4 of it."""
    net = load_model("vgg16")
    est = estimate_scaling(net, ranks=8, batch=256, bandwidth=parse_bandwidth("25Gb/s"), latency=5e-6,
                           flops_per_s=1e11)
    assert est.gradient_bytes == 138_357_544 * 4
    assert est.allreduce_s == pytest.approx(2 * 7 / 8 * est.gradient_bytes / 3.125e9 + 14 * 5e-6)
    assert est.batch_per_rank == 32 and est.bn_sync_s == 0
    assert est.step_s == pytest.approx(est.compute_s + est.allreduce_s)
    assert est.efficiency == pytest.approx(est.compute_s / est.step_s)
    one = estimate_scaling(net, ranks=1, batch=256, bandwidth=1e9, latency=5e-6, flops_per_s=1e11)
    assert one.efficiency == pytest.approx(1) and one.allreduce_s == 0
    with pytest.raises(ConfigError, match="exceeds the global batch"):
        estimate_scaling(net, ranks=512, batch=256, bandwidth=1e9, latency=5e-6, flops_per_s=1e11)
