"""`import convnet` before NumPy sets OpenBLAS's idle-spin time (setdefault), and only then."""
import os
import subprocess
import sys


def _run(code, timeout=None):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if timeout is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = timeout
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.strip()


def test_sets_the_timeout_when_convnet_loads_numpy():
    assert _run("import convnet, os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == "20"


def test_a_value_already_set_wins():
    assert _run("import convnet, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])", timeout="7") == "7"


def test_no_change_when_numpy_was_imported_first():
    assert _run("import numpy, convnet, os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == "None"


def _malloc_status(**env):
    code = "import convnet._malloc as m, convnet; print(m.STATUS)"
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k not in ("CONVNET_MALLOC", "GLIBC_TUNABLES")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                          check=True).stdout.strip()


def _skip_unless_glibc():
    import pytest

    if "not glibc" in _malloc_status() or not sys.platform.startswith("linux"):
        pytest.skip("glibc only")


def test_malloc_thresholds_set_on_import_unless_opted_out():
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
        "import convnet, numpy as np, resource\n"
        "def faults():\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "a = np.ones(2**22, np.float32); del a\n"
        "f0 = faults(); b = np.ones(2**22, np.float32); print(faults() - f0)\n"
    )
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("CONVNET_MALLOC", "GLIBC_TUNABLES")}
    tuned = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)
    env["CONVNET_MALLOC"] = "0"
    plain = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)
    assert tuned < 64 < plain  # 16 MiB is 4096 pages of 4 KiB (fewer faults where huge pages serve some)
