"""Shared fixtures: the PyTorch oracle, seeded generators, and the ``src`` import path."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.join(os.path.dirname(_HERE), "src")
if _SRC not in sys.path:  # run from a checkout without installing (PYTHONPATH=src also works)
    sys.path.insert(0, _SRC)
if _HERE not in sys.path:  # `import oracle` from any test file
    sys.path.insert(0, _HERE)

from oracle import require_module, require_torch  # noqa: E402
from hypothesis import settings as _hypothesis_settings  # noqa: E402

# CI (CI=true) draws the same examples every run, so that a run's outcome depends on the code
# only; local runs keep exploring new examples
_hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")

_USER_ENV = set(os.environ)

from convnet import runtime  # noqa: E402

runtime.tune()  # the settings the `convnet` command runs with (NumPy is loaded: malloc only)
if os.environ.get("CONVNET_PREPACK") == "1" and "CONVNET_PREPACK" not in _USER_ENV:
    del os.environ["CONVNET_PREPACK"]  # in process, the library's default (no prepacking); CLI runs set it
# the algorithm choices the tests expect are the cost model's: a developer's tuning cache
# (~/.cache/convnet/tuning.json, written by `convnet tune`) must not change them
os.environ["CONVNET_TUNE"] = "0"


@pytest.fixture(scope="session")
def torch():
    """The PyTorch module (2 threads); skipped if missing, a failure if CONVNET_REQUIRE_ORACLE=1."""
    return require_torch()


@pytest.fixture(scope="session")
def ort():
    """The onnxruntime module (ONNX Runtime, the interop oracle); skipped if missing, a failure if
    CONVNET_REQUIRE_ORACLE=1."""
    ort = require_module("onnxruntime")
    ort.set_default_logger_severity(3)
    return ort


@pytest.fixture(scope="session")
def onnx():
    """The onnx module; skipped if missing, a failure if CONVNET_REQUIRE_ORACLE=1."""
    return require_module("onnx")


@pytest.fixture(scope="session")
def mpiexec():
    """The `mpiexec` that came with the mpich wheel (beside this Python first, then on PATH), with
    mpi4py importable; skipped if missing, a failure if CONVNET_REQUIRE_ORACLE=1. Tests run
    ``[mpiexec, "-n", "2", sys.executable, ...]``."""
    import shutil

    require_module("mpi4py")
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")
    if found is None:
        message = "no mpiexec beside this Python or on PATH (pip install mpich)"
        if _REQUIRE:
            pytest.fail(f"CONVNET_REQUIRE_ORACLE=1 but {message}")
        pytest.skip(message)
    return found


#: where Debian's chromium lands (CONVNET_CHROMIUM overrides)
_CHROMIUM = os.environ.get("CONVNET_CHROMIUM") or "/usr/bin/chromium"
#: flags for a sandboxed machine with no network: no first-run work, no background connections
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright (the system browser: Playwright downloads none);
    skipped where Playwright or chromium is missing, a failure under CONVNET_REQUIRE_ORACLE=1 when
    CI is set (`.ci/run` installs Debian's chromium first)."""
    required = _REQUIRE and bool(os.environ.get("CI"))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if required:
            pytest.fail(f"CI requires the browser tests but Playwright cannot be imported: {exc}")
        pytest.skip(f"Playwright is not installed ({exc})")
    if not os.access(_CHROMIUM, os.X_OK):
        message = f"no Chromium at {_CHROMIUM} (apt-get install chromium, or set CONVNET_CHROMIUM)"
        if required:
            pytest.fail(f"CI requires the browser tests but there is {message}")
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's name, so every test draws the same numbers every run."""
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


# -- the oracle must not be skipped in CI ---------------------------------------------------------
_REQUIRE = os.environ.get("CONVNET_REQUIRE_ORACLE") == "1"
#: fixtures whose tests must run in CI, and how many of each passed
_ORACLES = {"torch": "PyTorch", "ort": "ONNX Runtime", "mpiexec": "`mpiexec -n 2`", "browser": "headless Chromium"}
#: required only where CI is set (Debian's chromium is a system package, not a pip one)
_CI_ONLY = {"browser"}
_passed = {name: 0 for name in _ORACLES}


def pytest_collection_modifyitems(config, items):
    """Every test that uses the `torch`, `ort` or `onnx` fixture is an oracle test; `mpiexec` and
    `browser` mark MPI and browser tests, which must not be skipped either."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {*_ORACLES, "onnx"}:
            item.add_marker(pytest.mark.oracle)
        if "mpiexec" in names:
            item.add_marker(pytest.mark.mpi)
        if "browser" in names:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("oracle") is None:
        return
    if report.when == "call" and report.passed:
        for name in _ORACLES:
            if name in getattr(item, "fixturenames", ()):
                _passed[name] += 1
    if _REQUIRE and report.skipped and not (
        "browser" in getattr(item, "fixturenames", ()) and not os.environ.get("CI")
    ):
        report.outcome = "failed"
        report.longrepr = f"Oracle test skipped while CONVNET_REQUIRE_ORACLE=1: {report.longrepr}"


def pytest_sessionfinish(session, exitstatus):
    if not (_REQUIRE and session.testscollected):
        return
    missing = [
        label for name, label in _ORACLES.items()
        if _passed[name] == 0 and (name not in _CI_ONLY or os.environ.get("CI"))
    ]
    if missing:
        print(f"\nCONVNET_REQUIRE_ORACLE=1 but no {' and no '.join(missing)} oracle test passed.", file=sys.stderr)
        session.exitstatus = 1


@pytest.fixture(params=["whole", "split"])
def split(request, monkeypatch):
    """Run a compiled-kernel test twice: every range whole on the calling thread (what small work
    gets), and split in two over the helper thread (``SPLIT_MIN_WORK = 0``, two threads)."""
    if request.param == "split":
        from convnet.ops.kernels import parallel

        monkeypatch.setattr(parallel, "SPLIT_MIN_WORK", 0)
        monkeypatch.setenv("CONVNET_THREADS", "2")
    return request.param
