"""The world: the processes of one job, as a small object with the collectives training needs.

``get_world()`` returns a :class:`SingleProcess` unless this process was started by an MPI
launcher (``mpiexec``, ``srun --mpi=pmi2``) with more than one process; only then is mpi4py
imported and an :class:`MPIWorld` over ``COMM_WORLD`` returned.  The trainer calls the same
methods either way; on one process they are identities, so a run without MPI computes exactly
what it computed before this package existed.

Every blocking collective of an :class:`MPIWorld` runs under a :class:`~.watchdog.Watchdog`:
when it has not completed after ``CONVNET_MPI_TIMEOUT`` seconds (default 600) the job is
aborted with exit status 10 (a rank hung, or died without the launcher noticing).
"""
from __future__ import annotations

import builtins
import os
import sys

import numpy as np

from .. import errors
from ..errors import ConvNetError, DistributedError
from .watchdog import Watchdog

__all__ = ["World", "SingleProcess", "MPIWorld", "get_world", "current_world", "launched_by_mpi", "DEFAULT_TIMEOUT_S"]

#: environment variables that MPI launchers set to the number of processes of the job
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
#: seconds a collective may wait before the watchdog ends the job (CONVNET_MPI_TIMEOUT)
DEFAULT_TIMEOUT_S = 600.0

_WORLD = None


def launched_by_mpi() -> int:
    """The job's process count announced by an MPI launcher in the environment, else 0."""
    for name in _SIZE_VARS:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


class World:
    """The collectives of data-parallel training.  ``rank`` and ``size`` as in MPI; the root is 0."""

    rank = 0
    size = 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether there is more than one process (collectives do something)."""
        return self.size > 1

    def allreduce_(self, buf: np.ndarray, *, what: str = "allreduce") -> np.ndarray:
        """Sum ``buf`` over the ranks in place (every rank gets the sum); returns ``buf``."""
        return buf

    def broadcast_(self, buf: np.ndarray, *, what: str = "broadcast") -> np.ndarray:
        """Overwrite ``buf`` with rank 0's values, in place; returns ``buf``."""
        return buf

    def bcast(self, obj, *, what: str = "broadcast"):
        """Rank 0's (picklable) ``obj``, on every rank."""
        return obj

    def allgather(self, obj, *, what: str = "allgather") -> list:
        """Every rank's (picklable) ``obj``, in rank order, on every rank."""
        return [obj]

    def barrier(self, *, what: str = "barrier") -> None:
        """Wait until every rank reaches here."""

    def abort(self, code: int) -> None:
        """End the whole job with exit status ``code``."""
        sys.exit(code)

    def on_root(self, fn, *, what: str):
        """Run ``fn()`` on rank 0 and return its result on every rank.

        An exception there is raised on every rank (marked ``collective``, so that only rank 0
        reports it and no rank needs to abort the others): the way to create a run folder or
        read a checkpoint once for the job.
        """
        try:
            value = fn()
        except ConvNetError as exc:
            exc.collective = True
            raise
        return value

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleProcess(World):
    """The world of a process started without an MPI launcher (or by ``mpiexec -n 1``)."""


class MPIWorld(World):
    """``COMM_WORLD`` of mpi4py, each blocking collective watched by a deadline."""

    def __init__(self, comm, mpi, *, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.comm, self.mpi = comm, mpi
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.watchdog = Watchdog(timeout_s, on_expire=self._expired)

    def _expired(self, what: str, waited: float) -> None:
        print(f"rank {self.rank}: convnet: error: the {what} got no answer from the other ranks in {waited:.0f} s "
              f"(a rank hung or died; CONVNET_MPI_TIMEOUT sets the limit); ending the job.", file=sys.stderr, flush=True)
        self.comm.Abort(DistributedError.exit_code)

    def allreduce_(self, buf, *, what="allreduce"):
        with self.watchdog.watch(what):
            self.comm.Allreduce(self.mpi.IN_PLACE, buf, op=self.mpi.SUM)
        return buf

    def broadcast_(self, buf, *, what="broadcast"):
        with self.watchdog.watch(what):
            self.comm.Bcast(buf, root=0)
        return buf

    def bcast(self, obj, *, what="broadcast"):
        with self.watchdog.watch(what):
            return self.comm.bcast(obj, root=0)

    def allgather(self, obj, *, what="allgather"):
        with self.watchdog.watch(what):
            return self.comm.allgather(obj)

    def barrier(self, *, what="barrier"):
        with self.watchdog.watch(what):
            self.comm.Barrier()

    def abort(self, code: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(int(code))

    def on_root(self, fn, *, what: str):
        outcome = None
        if self.is_root:
            try:
                outcome = ("ok", fn())
            except Exception as exc:  # sent to the other ranks as plain data, raised everywhere
                outcome = ("error", (type(exc).__name__, str(exc)))
        kind, value = self.bcast(outcome, what=what)
        if kind == "ok":
            return value
        error = _rebuilt(*value)
        if isinstance(error, ConvNetError):
            error.collective = True
        raise error


def _rebuilt(name: str, message: str) -> Exception:
    """The error rank 0 raised, from its class name and message: the same class where it is one of
    :mod:`convnet.errors` or a built-in exception (so every rank exits with its code), else a
    DistributedError naming it.  Errors travel as strings, never as pickled objects."""
    for home, base in ((errors, ConvNetError), (builtins, Exception)):
        cls = getattr(home, name, None)
        if isinstance(cls, type) and issubclass(cls, base):
            try:
                return cls(message)
            except Exception:  # a constructor that wants other arguments
                break
    return DistributedError(f"rank 0 failed: {name}: {message}")


def _timeout_from_env() -> float:
    raw = os.environ.get("CONVNET_MPI_TIMEOUT", "")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DistributedError(f"CONVNET_MPI_TIMEOUT must be a positive number of seconds; received {raw!r}.")
    return value


def get_world() -> World:
    """The world of this process (made once): an :class:`MPIWorld` when an MPI launcher started
    more than one process, else a :class:`SingleProcess`."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    if launched_by_mpi() <= 1:
        _WORLD = SingleProcess()
        return _WORLD
    timeout = _timeout_from_env()
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(f"This process was started by an MPI launcher with {launched_by_mpi()} processes but "
                               f"mpi4py cannot be imported ({exc}); install it with `pip install convnet[mpi]`.") from None
    comm = MPI.COMM_WORLD
    _WORLD = MPIWorld(comm, MPI, timeout_s=timeout) if comm.Get_size() > 1 else SingleProcess()
    return _WORLD


def current_world() -> World | None:
    """The world :func:`get_world` made, or None when no command asked for one (never imports mpi4py)."""
    return _WORLD
