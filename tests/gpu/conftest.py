"""The GPU tests (issue 20): marked ``gpu``, skipped with the reason when CuPy or a CUDA GPU is
missing, so that CI (CPU only) collects and skips them.  tests/gpu/run.sh runs them on a GPU machine."""
from __future__ import annotations

import pytest


def gpu_missing() -> str | None:
    """Why the GPU tests cannot run here (None: they can)."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA runtime that fails to load
        return f"needs CuPy (pip install convnet[gpu]): {type(exc).__name__}: {exc}"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no CUDA GPU"
    except Exception as exc:
        return f"CuPy sees no CUDA GPU ({type(exc).__name__})"
    return None


def pytest_collection_modifyitems(config, items):
    reason = gpu_missing()
    for item in items:
        if "/tests/gpu/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.gpu)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def cp():
    """The ``cupy`` module (the test is skipped without CuPy and a GPU)."""
    reason = gpu_missing()
    if reason:
        pytest.skip(reason)
    import cupy

    return cupy
