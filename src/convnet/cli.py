"""The ``convnet`` command line: ``convnet COMMAND [options]``.

Each subcommand lives in its own module under :mod:`convnet.commands` and
defines two functions::

    def register(subparsers) -> argparse.ArgumentParser:
        p = subparsers.add_parser("summary", help="...", description="...")
        p.add_argument(...)
        p.set_defaults(func=run)
        return p

    def run(args) -> int:      # the exit status
        ...

:func:`build_parser` imports every module of the package (those listed in
``ORDER`` first, in that order, then any others alphabetically), so adding a
command is adding a file — ``commands/train.py`` — and nothing here changes.

Errors: a :class:`~convnet.errors.ConvNetError` is printed as one line on
stderr and the process exits with the error's ``exit_code``; see
``convnet --help`` for the table.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from . import __version__
from .errors import ConvNetError

#: preferred order of subcommands in ``--help``; modules not listed follow alphabetically
ORDER = ("summary", "train", "evaluate", "predict", "gradcheck", "convert")

EXIT_CODES = """exit status:
  0  success
  1  unexpected internal error (a bug: please report it)
  2  invalid arguments, pattern, shape or configuration
  3  malformed or truncated data / weight file
  4  unsafe file refused
  5  does not fit the memory budget
  6  loss, gradient or parameter became NaN or infinite
  7  checkpoint missing, corrupt or from another configuration
"""


def command_modules() -> list:
    """The imported modules of :mod:`convnet.commands`, in help order."""
    from . import commands

    found = {m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")}
    names = [n for n in ORDER if n in found] + sorted(found - set(ORDER))
    return [importlib.import_module(f"{commands.__name__}.{n}") for n in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convnet",
        description="A readable convolutional-network engine in NumPy: inspect, train and run ConvNets.",
        epilog=EXIT_CODES + "\nRun 'convnet COMMAND --help' for the options of one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"convnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in command_modules():
        module.register(sub)
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConvNetError as exc:
        print(f"convnet {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `convnet summary vgg16 | head`: the reader went away
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
