"""Run folders: where each ``convnet train`` writes, so that no run ever replaces another.

Without ``--out`` a run gets the next numbered folder under ``runs/`` (``runs/001``,
``runs/002``...; the number is claimed with an exclusive ``mkdir``, so two runs
started at once never share one) and ``runs/latest`` becomes a symbolic link to
it.  An explicit ``--out`` that already holds a run is refused unless the run is
resumed (``--resume``) or deliberately replaced (``--overwrite``).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import PathError
from ..paths import os_error_message, output_folder

__all__ = ["RUN_FILES", "run_files", "new_run_folder", "resolve_out", "LATEST"]

#: the files a training run writes into its folder
RUN_FILES = ("last.safetensors", "best.safetensors", "metrics.json", "history.json", "history.csv",
             "curves.png", "filters.png")
LATEST = "latest"
_DIGITS = 3


def run_files(folder) -> list[str]:
    """The names of run files present in ``folder`` (empty when it holds no run)."""
    folder = Path(folder)
    return [n for n in RUN_FILES if (folder / n).exists()] if folder.is_dir() else []


def new_run_folder(root="runs") -> Path:
    """Make and return the next numbered run folder under ``root``; point ``root/latest`` at it."""
    root = output_folder(root, what="The runs folder")
    numbers = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
    n = max(numbers, default=0) + 1
    while True:
        run = root / f"{n:0{_DIGITS}d}"
        try:
            run.mkdir()
            break
        except FileExistsError:  # another run claimed it first
            n += 1
        except OSError as exc:
            raise PathError(os_error_message(exc, what="The run folder", path=run)) from None
    _point_latest(root, run)
    return run


def _point_latest(root: Path, run: Path) -> None:
    """Make ``root/latest`` a relative symbolic link to ``run`` (atomically); a real folder there is left alone."""
    latest = root / LATEST
    if latest.exists() and not latest.is_symlink():
        return  # a folder written by an older convnet: never replaced
    tmp = root / f".{LATEST}.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(run.name, tmp)
        os.replace(tmp, latest)
    except OSError:  # no symbolic links here (some Windows setups): the numbered folder is the run
        if tmp.is_symlink():
            tmp.unlink()


def resolve_out(out, *, resume: bool = False, overwrite: bool = False, root="runs") -> Path:
    """The folder a run writes into.

    ``out=None``: a new numbered folder under ``root`` (with ``resume``: the one ``root/latest``
    points at).  Otherwise ``out`` itself, which must be a folder or not exist; if it already
    holds a run it is refused unless ``resume`` (continue it) or ``overwrite`` (its run files
    are deleted first).
    """
    if resume and overwrite:
        raise PathError("`resume=True` and `overwrite=True` contradict each other: one continues the run in "
                        "the folder, the other replaces it; give one.")
    if out is None:
        if not resume:
            return new_run_folder(root)
        out = Path(root) / LATEST
        if not out.exists():
            raise PathError(f"There is no run to resume: {out} does not exist; name the run folder with `out`.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PathError(f"Argument `out` {out} is a file; expected a folder for the run (new or holding a run).")
    present = run_files(out)
    if present and not (resume or overwrite):
        raise PathError(f"Argument `out` {out} already holds a run ({', '.join(present)}); pass `resume=True` to "
                        f"continue it or `overwrite=True` to replace it, or choose another folder.")
    folder = output_folder(out, what="Argument `out`")
    if overwrite:
        for name in present:
            (folder / name).unlink()
    return folder.resolve() if folder.is_symlink() else folder
