"""Leftover workers of a previous server: find them by pid + start time, and end them.

A worker records its pid and its start time (field 22 of /proc/<pid>/stat: clock ticks since
boot) in the runs table. After a restart the pid alone proves nothing: the kernel reuses pids,
and killing by pid could hit an unrelated process. The pair (pid, start time) names exactly one
process for the life of the machine.

Workers die with the server (server/lifeline.py), so a leftover is rare: a worker of an older
release, or one stopped (SIGSTOP) when its server died. A restarted server still kills any it
finds before it marks the run interrupted, so a resumed run never writes beside one.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("torchloom.runner")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on. The name (field 2) may hold spaces and
    parentheses, so the split starts after its last ')'."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None: no such process)."""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 20:
        return None
    return int(fields[19])  # field 22 of the file


def is_running(pid: int, started: int) -> bool:
    """Is the process that started at `started` still there and not a zombie (a zombie writes
    nothing; it only waits for init to collect it)?"""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 20:
        return False
    return int(fields[19]) == started and fields[0] != "Z"


def end_leftover(pid: int | None, started: int | None, timeout: float = 10.0) -> str:
    """Kill the worker (pid, started) if it still runs. Returns what happened: "none" (no
    record, or gone), "reused" (the pid now belongs to another process: left alone),
    "killed", or "survived" (still there after `timeout`, e.g. not ours to signal)."""
    if not pid or started is None:
        return "none"
    now = start_ticks(pid)
    if now is None:
        return "none"
    if now != started:
        return "reused"
    if not is_running(pid, started):
        return "none"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "none"
    except PermissionError:
        log.error("leftover worker %s cannot be killed (not ours)", pid)
        return "survived"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid, started):
            log.warning("killed leftover worker %s of a previous server", pid)
            return "killed"
        time.sleep(0.02)
    return "survived"
