"""Data-parallel training over MPI: the same training on 1 or N processes (docs/distributed.md).

``world.py`` is the group of processes (one path for 1 and N: a single-process world when
not launched by ``mpiexec``); ``sharding.py`` says which slice of a global batch a rank takes;
``allreduce.py`` sums gradients through one flat buffer; ``batchnorm_sync.py`` gives BatchNorm
the statistics of the whole global batch; ``consistency.py`` refuses ranks that differ before
the first step; ``watchdog.py`` ends a job whose collective never completes.  mpi4py is imported
only by :func:`get_world` when the process was started by an MPI launcher.
"""
from .allreduce import GradientBuffer, broadcast_net
from .batchnorm_sync import sync_batchnorm
from .consistency import check_same, data_fingerprint
from .sharding import ShardedGenerator, shard_bounds, shard_sizes
from .world import SingleProcess, World, current_world, get_world, launched_by_mpi

__all__ = [
    "GradientBuffer", "broadcast_net", "sync_batchnorm", "check_same", "data_fingerprint", "ShardedGenerator",
    "shard_bounds", "shard_sizes", "SingleProcess", "World", "current_world", "get_world", "launched_by_mpi",
]
