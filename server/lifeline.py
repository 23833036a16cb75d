"""Child processes die with the server that started them.

A training worker or an analysis process left behind by a killed server (SIGKILL, a crash, an
OOM kill of the web process) would keep writing into run folders that a restarted server hands
to new workers. Each child started with multiprocessing's "spawn" holds the read end of a pipe
whose write end only its parent holds (`multiprocessing.parent_process().sentinel`): the kernel
closes it when the parent dies, however it dies, so a thread blocked on it wakes and ends the
child. Unlike PR_SET_PDEATHSIG this needs no Linux-only call and is not tied to the parent
thread that started the child (the scheduler starts workers from short-lived threads).

Caveat for callers: the parent must keep the child's `Process` object (or its pool) alive while
the child runs; dropping it lets its finalizer close the pipe, which ends the child as well.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.connection import wait

EXIT_CODE = 70  # what a child that outlived its parent exits with (EX_SOFTWARE)


def die_with_parent(exit_code: int = EXIT_CODE) -> bool:
    """Start a daemon thread that ends this process at once when its parent process dies.
    Returns False when there is nothing to watch (not a multiprocessing child)."""
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if parent is None or sentinel is None:
        return False

    def watch() -> None:
        wait([sentinel])
        # no cleanup: the parent is gone, nobody reads what we would write; a half-written
        # checkpoint is never loaded (checkpoints are written to a temporary name first)
        os._exit(exit_code)

    threading.Thread(target=watch, name="torchloom-lifeline", daemon=True).start()
    return True
