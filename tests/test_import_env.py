"""`import convnet` changes nothing in the process; `convnet.runtime.tune()` (which the `convnet`
command calls first) sets OpenBLAS's idle-spin time before NumPy loads and glibc's malloc thresholds."""
import os
import subprocess
import sys

import pytest

_CLEAN = {k: v for k, v in os.environ.items()
          if k != "OPENBLAS_THREAD_TIMEOUT" and not k.startswith("MALLOC_") and k not in ("CONVNET_MALLOC", "GLIBC_TUNABLES")}


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**_CLEAN, **env},
                          check=True).stdout.strip()


def test_import_convnet_leaves_the_environment_and_malloc_alone():
    code = ("import os; before = dict(os.environ)\n"
            "import convnet, convnet.runtime as r\n"
            "net = convnet.parse('INPUT[8x8x1] -> CONV3-4 -> RELU -> FC-2'); net.build(); net.forward(__import__('numpy').ones((1, 8, 8, 1), 'float32'))\n"
            "print(dict(os.environ) == before, r.STATUS)")
    assert _run(code) == "True {'tuned': False, 'reason': 'not run'}"


def test_tune_sets_the_timeout_before_numpy_loads():
    assert _run("import convnet.runtime as r, os; r.tune(); print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == "20"


def test_a_value_already_set_wins():
    assert _run("import convnet.runtime as r, os; r.tune(); print(os.environ['OPENBLAS_THREAD_TIMEOUT'])",
                OPENBLAS_THREAD_TIMEOUT="7") == "7"


def test_no_change_when_numpy_was_imported_first():
    assert _run("import numpy, convnet.runtime as r, os; print(r.tune()['openblas_thread_timeout'], "
                "os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == "None None"


def test_the_command_tunes_first():
    code = ("import os, contextlib, io, convnet.__main__ as m\n"
            "with contextlib.redirect_stdout(io.StringIO()): m.main(['summary', '--list'])\n"
            "import convnet.runtime as r; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), r.STATUS['tuned'] or r.STATUS['reason'])")
    timeout, malloc = _run(code).split(" ", 1)
    assert timeout == "20" and malloc != "not run"


def _malloc_status(**env):
    return _run("import convnet.runtime as r; r.tune(); print(r.STATUS)", **env)


def _skip_unless_glibc():
    if "not glibc" in _malloc_status() or not sys.platform.startswith("linux"):
        pytest.skip("glibc only")


def test_malloc_thresholds_set_by_tune_unless_opted_out():
    _skip_unless_glibc()
    assert _malloc_status() == str({"tuned": True, "mmap_threshold": 32 * 2**20, "trim_threshold": 64 * 2**20})
    assert "CONVNET_MALLOC=0" in _malloc_status(CONVNET_MALLOC="0")
    assert "glibc MALLOC_" in _malloc_status(MALLOC_TRIM_THRESHOLD_="1000000")
    assert "GLIBC_TUNABLES" in _malloc_status(GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000000")


def test_freed_activation_sized_arrays_come_back_without_page_faults():
    """The point of the thresholds: the second 16 MiB array after a free faults in no pages.  (16, not
    8: without the tuning glibc raises its threshold to the largest mapped block freed so far, and
    importing NumPy, numba and friends may already have freed one of several MiB.)"""
    _skip_unless_glibc()
    code = (
        "import convnet.runtime as r; r.tune()\n"
        "import numpy as np, resource\n"
        "def faults():\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "a = np.ones(2**22, np.float32); del a\n"
        "f0 = faults(); b = np.ones(2**22, np.float32); print(faults() - f0)\n"
    )
    tuned = int(_run(code))
    plain = int(_run(code, CONVNET_MALLOC="0"))
    assert tuned < 64 < plain  # 16 MiB is 4096 pages of 4 KiB (fewer faults where huge pages serve some)
