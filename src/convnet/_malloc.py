"""glibc malloc settings for activation-sized arrays (``import convnet`` applies them once).

glibc serves a request above ``M_MMAP_THRESHOLD`` (128 KiB at start) with a fresh ``mmap``
and returns it to the system on ``free``: the next array of that size is mapped again and
faults in page by page.  glibc raises the threshold by itself after the first such free (up
to 32 MiB, with a trim threshold of twice that), but only for sizes it has seen freed, and
any long-lived large buffer stops the adaptation.  On these machines a minor page fault
costs about 4 µs: a CIFAR ResNet-20 training step (N = 64, activations of 1-4 MiB) took
4 000-15 000 faults, 20-60 ms of system time, depending on which arrays happened to be
long-lived; with the thresholds set where glibc's own rule ends up (32 MiB, 64 MiB) it took
none, and the step's median went from 240-285 ms to 217 ms.

So :func:`tune` sets ``M_MMAP_THRESHOLD`` = 32 MiB and ``M_TRIM_THRESHOLD`` = 64 MiB.  Freed
arrays under 32 MiB are then reused from the heap, and up to 64 MiB of free heap top is
kept before it is returned to the system.  Nothing is done when ``CONVNET_MALLOC=0``, when
any of glibc's own ``MALLOC_*_`` variables or a ``glibc.malloc`` tunable in ``GLIBC_TUNABLES``
is set (the user's choice wins), or off glibc (musl, macOS, Windows).
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 64 * 2**20
#: glibc's environment variables for the same settings: any of them set means "leave malloc alone"
GLIBC_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")

#: what :func:`tune` set (``{"mmap_threshold": ..., "trim_threshold": ...}``), or why it did not
STATUS: dict = {"tuned": False, "reason": "not run"}


def tune() -> dict:
    """Apply the two thresholds once; return :data:`STATUS`."""
    if STATUS.get("tuned"):
        return STATUS
    reason = None
    if os.environ.get("CONVNET_MALLOC", "1") == "0":
        reason = "CONVNET_MALLOC=0"
    elif any(v in os.environ for v in GLIBC_VARS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        reason = "glibc MALLOC_* variables or GLIBC_TUNABLES malloc settings set"
    elif not sys.platform.startswith("linux"):
        reason = f"not Linux ({sys.platform})"
    if reason is None:
        try:
            libc = ctypes.CDLL(None)
            libc.gnu_get_libc_version.restype = ctypes.c_char_p
            libc.gnu_get_libc_version()
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            reason = "not glibc"
        else:
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            ok = ok and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
            if ok:
                STATUS.clear()
                STATUS.update(tuned=True, mmap_threshold=MMAP_THRESHOLD_BYTES, trim_threshold=TRIM_THRESHOLD_BYTES)
                return STATUS
            reason = "mallopt refused"
    STATUS.clear()
    STATUS.update(tuned=False, reason=reason)
    return STATUS
