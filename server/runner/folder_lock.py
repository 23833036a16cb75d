"""One writer per run folder: an exclusive flock on `<run folder>/.writer.lock`.

Why a lock rather than a fresh attempt subfolder per resume: everything that reads a run
(exports, code.zip, resume, the checkpoint index) finds its files by fixed names in the run
folder; attempt folders would make every reader pick an attempt, and a writer left over from
before would still write somewhere. The kernel releases a flock when its holder dies, however it
dies (SIGKILL included), so a held lock means exactly "a live process is writing here", never a
stale marker; the worker takes it first and holds it for its whole life, and the scheduler does
not start a worker on a folder whose lock is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

NAME = ".writer.lock"


class FolderBusy(Exception):
    """Another live process holds the run folder."""

    def __init__(self, folder: Path, holder: int | None):
        who = f"process {holder}" if holder else "another process"
        super().__init__(f"the run folder is still being written by {who}")
        self.holder = holder


class FolderLock:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / NAME
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock without waiting (FolderBusy if held) and write our pid into it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise FolderBusy(self.folder, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def holder(folder: Path) -> int | None:
    """The pid holding the folder's lock (0 when held by an unnamed writer), None when free."""
    lock = FolderLock(folder)
    if not lock.path.exists():
        return None
    try:
        lock.acquire()
    except FolderBusy as busy:
        return busy.holder or 0
    except OSError:
        return None  # the folder is unwritable: the worker will report it
    # the check itself must not leave our pid behind as if we were a writer
    with contextlib.suppress(OSError):
        os.ftruncate(lock.fd, 0)
    lock.release()
    return None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
