"""Disk space: what a folder holds, what its disk has left, and how a write that ran out of
space is told to the user. Shared by the worker (checkpoint quota) and the web process (free
space in /api/system, refusing new runs, failing a run whose events cannot be stored)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

GiB = 2**30
MiB = 2**20
# SQLite's text for SQLITE_FULL ("database or disk is full"); the driver raises it as an
# OperationalError, wrapped by SQLAlchemy, with no errno to look at
SQLITE_FULL = "database or disk is full"


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer can still use on the disk holding `path`."""
    return shutil.disk_usage(path).free


def tree_bytes(root: Path) -> int:
    """Bytes held by the files under `root` (not following links; missing root: 0). Files that
    vanish while counting (a checkpoint being replaced) are skipped."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return total


def is_disk_full(exc: BaseException) -> bool:
    """A write failed for lack of space (ENOSPC, EDQUOT, or SQLite's SQLITE_FULL)."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if SQLITE_FULL in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def write_error_reason(exc: BaseException, what: str) -> str:
    """One line for a failed write: "disk full" first when that is the cause, so the user
    knows what to free; otherwise the error's own text (never a traceback)."""
    if is_disk_full(exc):
        return f"disk full: {what} failed ({_first_line(exc)}); free space, then resume the run"
    return f"{what} failed: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy appends the statement and a help link on further lines: the first says it all
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
