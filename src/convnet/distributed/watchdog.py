"""A deadline for blocking collectives: a daemon thread that ends the job when one never completes.

MPI has no timeout on a blocking ``Allreduce``: when a rank hangs (or dies where the launcher
does not notice), the others would wait for ever.  ``with watchdog.watch("allreduce"): ...``
arms a deadline; a helper thread checks it once a second (or sooner, for short limits) and
calls ``on_expire(what, waited_s)`` — which aborts the job — when it passes.  Arming and
disarming are two attribute writes, so the watch costs nothing per step.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

__all__ = ["Watchdog"]


class Watchdog:
    """Call ``on_expire(what, waited_s)`` when a watched section runs past ``timeout_s`` seconds."""

    def __init__(self, timeout_s: float, *, on_expire):
        self.timeout_s = float(timeout_s)
        self.on_expire = on_expire
        self._section = None  # (what, started) while a collective runs
        self._thread = None
        self.fired = False

    @contextmanager
    def watch(self, what: str):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="convnet-mpi-watchdog", daemon=True)
            self._thread.start()
        self._section = (what, time.monotonic())
        try:
            yield
        finally:
            self._section = None

    def _run(self) -> None:
        tick = min(1.0, self.timeout_s / 4)
        while not self.fired:
            time.sleep(tick)
            section = self._section
            if section is not None:
                waited = time.monotonic() - section[1]
                if waited > self.timeout_s:
                    self.fired = True
                    self.on_expire(section[0], waited)
