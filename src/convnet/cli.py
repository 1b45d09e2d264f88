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
import errno
import importlib
import os
import pkgutil
import re
import sys
import warnings

import numpy as np

from . import __version__
from .errors import ConvNetError, PathError
from .paths import os_error_message

#: preferred order of subcommands in ``--help``; modules not listed follow alphabetically
ORDER = ("summary", "train", "evaluate", "predict", "gradcheck", "convert")

EXIT_CODES = """exit status:
  0  success
  1  unexpected internal error (a bug: please report it)
  2  invalid arguments, pattern, shape or configuration
  3  malformed or truncated data or image file
  4  unsafe file refused
  5  does not fit the memory budget
  6  loss, gradient or parameter became NaN or infinite
  7  checkpoint missing, corrupt, holding NaN/inf, or from another configuration
  8  a path cannot be used: missing folder, a file where a folder is expected (or the
     reverse), permission denied, disk full, or a folder that already holds a run
  9  a check ran and failed (gradcheck: a gradient differs from finite differences)
 10  data parallel (mpiexec): the ranks differ in configuration, data or shapes, or a
     rank stopped answering (CONVNET_MPI_TIMEOUT); a rank's own error ends the whole
     job with that error's status
 130 interrupted (Ctrl-C)
"""


def command_modules() -> list:
    """The imported modules of :mod:`convnet.commands`, in help order."""
    from . import commands

    found = {m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")}
    names = [n for n in ORDER if n in found] + sorted(found - set(ORDER))
    return [importlib.import_module(f"{commands.__name__}.{n}") for n in names]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help').\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Every failure a user can cause ends as one line on stderr and a documented exit status:
    errors of ours by their ``exit_code``, operating-system errors (a full disk, a missing
    folder, no permission) as 8.  NumPy's floating-point warnings are silenced here: the
    commands check for non-finite values themselves and name where they arose.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    args.argv = argv
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            status = int(args.func(args) or 0)
        sys.stdout.flush()  # a full disk or closed pipe shows here, not after we return
        return status
    except ConvNetError as exc:
        return _fail(args, in_cli_terms(str(exc), _options(parser, args.command)), exc.exit_code,
                     collective=getattr(exc, "collective", False))
    except BrokenPipeError:  # `convnet summary vgg16 | head`: the reader went away
        _silence_stdout()
        return 0
    except OSError as exc:
        if exc.filename is None and exc.errno == errno.ENOSPC:
            _silence_stdout()
            return _fail(args, "cannot write the output: the disk is full.", PathError.exit_code)
        return _fail(args, os_error_message(exc), PathError.exit_code, collective=getattr(exc, "collective", False))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: on one of N ranks it must still end the job (the others wait for it)
        world = _world()
        if world is None or not world.active:
            raise
        import traceback

        traceback.print_exc()
        return _fail(args, "unexpected internal error (a bug: please report it)", 1)


def _world():
    """The data-parallel world a command made (convnet.distributed), or None; imports nothing."""
    module = sys.modules.get("convnet.distributed.world")
    return None if module is None else module.current_world()


def _fail(args, message: str, code: int, *, collective: bool = False) -> int:
    """Report an error on stderr and return its exit status.

    Under mpiexec with several ranks: an error every rank raised at once (``collective``) is
    reported by rank 0 alone and each rank exits with the status; any other error is reported
    with its rank and ends the whole job at once (MPI_Abort with the status), since the other
    ranks would otherwise wait for this one for ever."""
    world = _world()
    if world is not None and world.active:
        if collective:
            if world.is_root:
                print(f"convnet {args.command}: error: {message}", file=sys.stderr, flush=True)
            return code
        print(f"rank {world.rank}: convnet {args.command}: error: {message}", file=sys.stderr, flush=True)
        world.abort(code)
    print(f"convnet {args.command}: error: {message}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _options(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The long options of ``convnet COMMAND`` (``{"--batch", "--image-size", ...}``)."""
    for action in parser._subparsers._group_actions:  # argparse keeps subparsers only here
        sub = action.choices.get(command)
        if sub is not None:
            return {o for a in sub._actions for o in a.option_strings if o.startswith("--")}
    return set()


_ARGUMENT = re.compile(r"(?:[Aa]rgument|[Oo]ption) `(\w+)`|`(\w+)=True`|`(\w+)`|\b(\w+)=\(H, W\)")


def in_cli_terms(message: str, options: set[str]) -> str:
    """Rewrite the Python API's words for the command line: "Argument `batch`" → "Option --batch",
    "`resume=True`" → "--resume", "image_size=(H, W)" → "--image-size HxW", where such options exist."""

    def option(name):
        flag = "--" + name.replace("_", "-")
        return flag if flag in options else None

    def rewrite(m):
        named, true, bare, hw = m.groups()
        flag = option(named or true or bare or hw)
        if flag is None:
            return m.group(0)
        if named:
            return f"Option {flag}"
        return f"{flag} HxW" if hw else flag

    return _ARGUMENT.sub(rewrite, message)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
