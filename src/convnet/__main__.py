"""``python -m convnet`` and the ``convnet`` command: the speed settings, then the command line."""
import sys


def main(argv=None) -> int:
    """Apply :func:`convnet.runtime.tune` (before NumPy loads), then run :func:`convnet.cli.main`."""
    from .runtime import tune

    tune()
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
