"""Paths a command reads or writes, checked before any work starts.

Each check raises :class:`~convnet.errors.PathError` (exit status 8) with one
sentence naming the path, what it is, and what was expected, so that a long run
never ends in a traceback because its output folder was a file all along.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import PathError

__all__ = ["output_file", "output_folder", "os_error_message"]


def _kind(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        return "a broken symbolic link"
    if path.is_dir():
        return "a folder"
    if path.is_file():
        return "a file"
    return "neither a file nor a folder"


def output_folder(path, *, what: str) -> Path:
    """``path`` as an existing folder to write into (created with its parents when missing)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PathError(f"{what} {p} is {_kind(p)}; expected a folder (or a path where one can be made).")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(os_error_message(exc, what=what, path=p)) from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise PathError(f"{what} {p} is a folder this user may not write into (permission denied).")
    return p


def output_file(path, *, what: str) -> Path:
    """``path`` as a file that can be written: its folder exists, and it is not itself a folder."""
    p = Path(path)
    if p.is_dir():
        raise PathError(f"{what} {p} is a folder; expected the name of a file to write, such as {p / 'out.png'}.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise PathError(f"{what} {p} cannot be written: the folder {parent} does not exist.")
    if not parent.is_dir():
        raise PathError(f"{what} {p} cannot be written: {parent} is {_kind(parent)}, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise PathError(f"{what} {p} cannot be written: permission denied.")
    return p


_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.ENOENT: "it (or a folder on its way) does not exist",
    errno.ENOTDIR: "a part of it is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.EEXIST: "it already exists",
    errno.EROFS: "the file system is read-only",
}


def os_error_message(exc: OSError, *, what: str = "the path", path=None) -> str:
    """One sentence for an OSError: which path, and why in words (disk full, permission denied...)."""
    target = path if path is not None else (exc.filename if exc.filename is not None else None)
    reason = _REASONS.get(exc.errno, exc.strerror or str(exc))
    where = f"{what} {target}" if target is not None else what
    return f"cannot use {where}: {reason}."
