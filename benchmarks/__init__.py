"""convnet's benchmark suite: a runnable program, not tests.

``python -m benchmarks.run`` (full) or ``python -m benchmarks.run --quick``;
see docs/benchmarks.md.  Nothing here is imported by the package or the tests,
and this file must not import NumPy: ``run.py`` sets the thread counts before
the first import of any numerical library.
"""
