"""Run one function in a child process with an address-space limit and a time limit.

    result = limited.call(fn, *args, memory_bytes=..., seconds=..., what="reading data.csv")

Why: reading an upload (a CSV one-hot encoded into 300 × 4,000 columns, a gzip of zeros inside
an MNIST zip, an image zip resized to 4096 × 4096) can take gigabytes from a file of a few
kilobytes, and under Linux overcommit MemoryError rarely comes before the OOM killer. Done in
the web process, that growth stays (and takes the server down); done here, the child dies at its
limit and the web process only sees a clear error.

How: the child is forked from a fork server (multiprocessing's "forkserver") that imported
numpy, torch and the data layer once, so each call costs a fork, not a torch import, and the
child shares nothing with the web process (it is forked from the clean fork server, never from
the web process). In the child, after its imports: one torch thread (no thread pool, no
per-thread malloc arenas), then RLIMIT_AS = the child's current VmSize + `memory_bytes`; the
function runs; its result (or the error) comes back through a pipe. The parent waits at most
`seconds`, then kills the child. Children die with the server (server/lifeline.py).

Errors: LimitExceeded (memory: MemoryError or the child killed at its limit, or time) carries a
message for a 413; an ApiError raised in the child is raised again as such in the parent; any
other exception becomes ChildFailed with its type and message.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
from collections.abc import Callable
from typing import Any

from .engine.diskspace import format_bytes
from .errors import ApiError

# imported once by the fork server; the children inherit them
PRELOAD = [
    "numpy",
    "torch",
    "PIL.Image",
    "server.engine.data",
    "server.storage.datasets",
    "server.storage.upload_checks",
]
# what a child that ran out of address space dies of when the allocation failure is not a
# MemoryError (a C++ bad_alloc turned into RuntimeError by torch, or an abort)
_ALLOC_FAILED = ("can't allocate memory", "bad_alloc", "Cannot allocate memory")

_context_lock = threading.Lock()
_context: Any = None


class LimitExceeded(Exception):
    """The child hit its memory or time limit; the message says which and how much."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # "memory" | "time"


class ChildFailed(Exception):
    """The function raised something other than an ApiError, or the child died."""


def _ctx():
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


def vm_size() -> int:
    """This process's virtual memory size in bytes (/proc/self/status VmSize)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


def _child(conn, fn: Callable, args: tuple, memory_bytes: int) -> None:
    from .lifeline import die_with_parent

    die_with_parent()
    try:
        import torch

        torch.set_num_threads(1)
        limit = vm_size() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
        result = ("ok", fn(*args))
    except MemoryError:
        result = ("memory", None)
    except RuntimeError as exc:
        failed = any(text in str(exc) for text in _ALLOC_FAILED)
        result = ("memory", None) if failed else ("error", f"RuntimeError: {exc}")
    except ApiError as exc:
        result = ("api", (exc.status, exc.code, exc.message, exc.details))
    except BaseException as exc:  # reported to the parent, which logs and answers
        result = ("error", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(result)
    except MemoryError:
        conn.send(("memory", None))
    conn.close()


def call(
    fn: Callable,
    *args: Any,
    memory_bytes: int,
    seconds: float,
    what: str = "the work",
) -> Any:
    """fn(*args) in a limited child (fn importable, args and result picklable)."""
    ctx = _ctx()
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_child, args=(child, fn, args, memory_bytes), name="torchloom-limited", daemon=True
    )
    process.start()
    child.close()
    try:
        if not parent.poll(seconds):
            raise LimitExceeded(
                "time", f"{what} took longer than {seconds:g} s, the limit, and was stopped"
            )
        try:
            kind, value = parent.recv()
        except (EOFError, OSError):  # died without an answer: killed at its memory limit
            kind, value = "died", None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        parent.close()
    if kind == "ok":
        return value
    if kind == "api":
        status, code, message, details = value
        raise ApiError(status, code, message, details)
    if kind == "memory":
        raise LimitExceeded(
            "memory", f"{what} needs more than {format_bytes(memory_bytes)} of memory, the limit"
        )
    if kind == "died":  # under RLIMIT_AS, an allocation that fails in C code ends it
        raise LimitExceeded(
            "memory",
            f"{what} stopped abnormally (exit code {process.exitcode}), most likely at its "
            f"memory limit of {format_bytes(memory_bytes)}",
        )
    raise ChildFailed(f"{what} failed: {value}")
