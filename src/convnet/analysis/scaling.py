"""Does data parallelism pay for this net?  A model of one step on N ranks.

One data-parallel step (what :mod:`convnet.distributed` does) is the forward and backward
pass of each rank's slice of the global batch ``B``, then one ring allreduce of the gradients;
nothing overlaps (the allreduce starts when the backward pass has ended)::

    compute_s   = FLOPs per sample (forward + backward) · ceil(B / N) / flops_per_s
    allreduce_s = 2 (N - 1) / N · gradient_bytes / bandwidth + 2 (N - 1) · latency     (ring)
    bn_sync_s   = BN layers · 2 · ceil(log2 N) · (latency + message / bandwidth)   (synced BN: small
                  messages, recursive doubling — the way MPI libraries sum them)
    step_s      = compute_s + allreduce_s + bn_sync_s
    speedup     = (B · FLOPs per sample / flops_per_s) / step_s       (against one rank, no messages)
    efficiency  = speedup / N

The ring allreduce sends each byte ``2 (N-1)/N`` times over each link (reduce-scatter, then
allgather: Patarasuk and Yuan 2009; Horovod and NCCL use it), so its time hardly grows with N
while the compute per rank shrinks as ``1/N`` at a fixed global batch: the ratio of the two is
the answer.  The numbers are a model: ``flops_per_s`` is the rate one rank sustains in training
(not its peak), ``bandwidth`` what one link delivers.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from ..errors import ConfigError
from ..layers.norm import BatchNorm
from .summary import summarize

__all__ = ["ScalingEstimate", "estimate_scaling", "ring_allreduce_seconds", "parse_bandwidth", "parse_duration",
           "parse_rate", "DEFAULT_BANDWIDTH", "DEFAULT_LATENCY", "DEFAULT_FLOPS_PER_S"]

#: defaults of `convnet summary --ranks`: a 25 Gb/s Ethernet link, 5 µs per message, and 100 GFLOP/s
#: sustained per rank in training (a few CPU cores; pass a GPU's rate with --flops-per-s)
DEFAULT_BANDWIDTH, DEFAULT_LATENCY, DEFAULT_FLOPS_PER_S = "25Gb/s", "5us", "100G"

_BANDWIDTH_UNITS = {"b/s": 1 / 8, "kb/s": 1e3 / 8, "mb/s": 1e6 / 8, "gb/s": 1e9 / 8, "tb/s": 1e12 / 8,
                    "B/s": 1, "kB/s": 1e3, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12}
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_RATE_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*"


def parse_bandwidth(text) -> float:
    """``"25Gb/s"`` (bits, decimal: Gb/s, Mb/s, kb/s) or ``"3GB/s"`` (bytes: GB/s, MB/s) → bytes per second."""
    m = re.fullmatch(_NUMBER + r"([A-Za-z]+/s)\s*", str(text))
    unit = None if m is None else m.group(2)
    if unit is not None and unit not in _BANDWIDTH_UNITS and unit[0] in "KMGT" and unit.endswith("b/s"):
        unit = unit[0].lower() + unit[1:]  # "Gb/s" as written; bits take a lower-case b
    if m is None or unit not in _BANDWIDTH_UNITS or float(m.group(1)) <= 0:
        raise ConfigError(f"Argument `bandwidth` must be a positive rate such as '25Gb/s' (bits) or '3GB/s' (bytes), "
                          f"with a unit among Gb/s, Mb/s, kb/s, GB/s, MB/s; received {text!r}.")
    return float(m.group(1)) * _BANDWIDTH_UNITS[unit]


def parse_duration(text) -> float:
    """``"5us"`` → seconds (units s, ms, us, ns)."""
    m = re.fullmatch(_NUMBER + r"([a-zµ]+)\s*", str(text))
    if m is None or m.group(2) not in _TIME_UNITS:
        raise ConfigError(f"Argument `latency` must be a time such as '5us' or '0.1ms' (units s, ms, us, ns); "
                          f"received {text!r}.")
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def parse_rate(text) -> float:
    """``"100G"`` or ``"1.5e11"`` → FLOP/s (suffixes K, M, G, T, P; a trailing ``FLOP/s`` may be written)."""
    raw = str(text)
    m = re.fullmatch(_NUMBER + r"([KMGTP]?)(?:FLOP/s|FLOPS|flop/s)?\s*", raw)
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(f"Argument `flops_per_s` must be a positive rate such as '100G' or '15T' (FLOP/s); "
                          f"received {text!r}.")
    return float(m.group(1)) * _RATE_UNITS[m.group(2)]


def ring_allreduce_seconds(nbytes: float, ranks: int, *, bandwidth: float, latency: float) -> float:
    """Time of a ring allreduce of ``nbytes`` over ``ranks``: ``2(N-1)/N · bytes/bandwidth + 2(N-1) · latency``."""
    if ranks <= 1:
        return 0.0
    return 2 * (ranks - 1) / ranks * nbytes / bandwidth + 2 * (ranks - 1) * latency


@dataclass(frozen=True)
class ScalingEstimate:
    """One row of the model (seconds per step; bytes per rank and step)."""

    ranks: int
    batch: int
    batch_per_rank: int
    gradient_bytes: int
    compute_s: float
    allreduce_s: float
    bn_sync_s: float
    step_s: float
    speedup: float
    efficiency: float

    @property
    def communication_share(self) -> float:
        return (self.allreduce_s + self.bn_sync_s) / self.step_s if self.step_s else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "communication_share": self.communication_share}


def estimate_scaling(net, *, ranks: int, batch: int, bandwidth: float, latency: float, flops_per_s: float,
                     dtype="float32", sync_batchnorm: bool = True) -> ScalingEstimate:
    """The model above for ``net`` (built or not; its input shape known) at global ``batch``."""
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise ConfigError(f"Argument `ranks` must be a positive integer; received {ranks!r}.")
    if ranks > batch:
        raise ConfigError(f"Argument `ranks` {ranks} exceeds the global batch {batch}; expected at least one sample "
                          f"per rank (raise `batch`: it is the global batch of one step).")
    summary = summarize(net, batch=1, dtype=dtype)
    flops = summary.total_flops_forward + summary.total_flops_backward
    itemsize = 8 if str(dtype) == "float64" else 4
    grad_bytes = summary.total_params * itemsize
    per_rank = -(-batch // ranks)
    compute = flops * per_rank / flops_per_s
    allreduce = ring_allreduce_seconds(grad_bytes, ranks, bandwidth=bandwidth, latency=latency)
    bn_layers = [l for l in net.layers if isinstance(l, BatchNorm)] if sync_batchnorm and ranks > 1 else []
    rounds = math.ceil(math.log2(ranks)) if ranks > 1 else 0
    channels = sum(summary[l.name].output_shape[-1] for l in bn_layers)
    bn_sync = 2 * rounds * (len(bn_layers) * latency + (2 * channels + len(bn_layers)) * 8 / bandwidth)
    step = compute + allreduce + bn_sync
    single = flops * batch / flops_per_s
    speedup = single / step
    return ScalingEstimate(ranks, batch, per_rank, grad_bytes, compute, allreduce, bn_sync, step, speedup,
                           speedup / ranks)


def scaling_table(rows: list[ScalingEstimate], *, bandwidth: float, latency: float, flops_per_s: float) -> str:
    """The rows as text, with the assumptions on the first line."""
    head = (f"Data parallel (ring allreduce over {bandwidth * 8 / 1e9:g} Gb/s, {latency * 1e6:g} us per message, "
            f"{flops_per_s / 1e9:g} GFLOP/s per rank; no overlap; --batch is the global batch):")
    cols = ("ranks", "batch/rank", "gradients", "compute", "allreduce", "BN sync", "step", "comm share", "speedup",
            "efficiency")
    lines = [head, "  " + "  ".join(f"{c:>10}" for c in cols)]
    for r in rows:
        cells = (str(r.ranks), str(r.batch_per_rank), _mb(r.gradient_bytes), _ms(r.compute_s), _ms(r.allreduce_s),
                 _ms(r.bn_sync_s), _ms(r.step_s), f"{100 * r.communication_share:.0f}%", f"{r.speedup:.1f}x",
                 f"{100 * r.efficiency:.0f}%")
        lines.append("  " + "  ".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)


def _ms(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
