"""`import convnet` before NumPy sets OpenBLAS's idle-spin time (setdefault), and only then."""
import os
import subprocess
import sys


def _run(code, **env):
    full = dict(os.environ, **env)
    full.pop("OPENBLAS_THREAD_TIMEOUT", None) if "OPENBLAS_THREAD_TIMEOUT" not in env else None
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, check=True).stdout.strip()


def test_sets_the_timeout_when_convnet_loads_numpy():
    assert _run("import convnet, os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == "20"


def test_a_value_already_set_wins():
    assert _run("import convnet, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])", OPENBLAS_THREAD_TIMEOUT="7") == "7"


def test_no_change_when_numpy_was_imported_first():
    assert _run("import numpy, convnet, os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == "None"
