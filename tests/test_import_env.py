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
