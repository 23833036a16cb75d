"""Graph analysis (what /api/validate answers) and model builds in a few processes of their own.

What runs here: validation and code generation (both analyse the graph), the check of a graph
before a run starts, and every model the server builds (the weights check, predictions,
evaluation and exports). Why processes: an analysis is pure Python, so in the web process
fifty concurrent validations take turns on one GIL and all finish near the end; N processes
answer N at a time; and a model build that takes long or grows large happens away from the
requests the web process serves, under a time limit.

User code. With `--allow-custom-code`, analysing a CustomLayer executes its code: that code
must not run in the web process, so with custom code allowed every analysis goes to a process
(one at least), whatever `analysis_workers` says. And code that patches a module (torch, the
compiler) would change every later answer of the process it ran in, so a task whose document
holds user code runs in a process of its own that is retired right after (`max_tasks_per_child
=1`: a fresh one is spawned and warms up meanwhile); graphs without user code keep the warm pool.

Time limit. Every task gets `timeout` seconds (ServerConfig.analysis_timeout, default 120),
counted from its submission: a task that waits for a process still warming up (a few seconds)
spends part of it, so keep the limit well above that. A task still running then (custom code
that never returns, a build that will not end) has its process killed with the rest of its pool,
which is replaced; the request is answered 422 analysis_timeout, never retried in the web
process. A task that never started (every process busy) is cancelled instead: 503.

The pools start on first use or on start() (`torchloom serve` and the WSGI entry start the
warm one at launch; tests that never validate pay nothing); each process pays torch's import and
warm-up once, and ends when the server process ends, however it ends (server/lifeline.py). A
pool that breaks (a process killed) is replaced on the next request; the validation that saw it
break is answered in-process when that is allowed. Every fallback and failure logs one line.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NoReturn

from graph_compiler import GraphCompileError, analyze, generate
from graph_compiler.custom import has_custom_code

from .errors import ApiError

log = logging.getLogger("torchloom.analysis")

DEFAULT_TIMEOUT = 120.0  # seconds; ServerConfig.analysis_timeout

WARM, ONE_SHOT = "warm", "one-shot"


def _init() -> None:
    """Each process: end with the server (its pool object stays referenced by the AnalysisPool
    while it runs, as lifeline's caveat asks), then pay torch's warm-up."""
    from graph_compiler import warmup

    from .lifeline import die_with_parent

    die_with_parent()
    warmup()


class AnalysisUnavailable(RuntimeError):
    """The analysis processes are gone or busy and the task may not run in the web process."""


class AnalysisTimeout(ApiError):
    """A task ran past the time limit; its process was killed (an ApiError: 422 wherever it
    surfaces)."""

    def __init__(self, what: str, seconds: float):
        super().__init__(
            422,
            "analysis_timeout",
            f"{what} took longer than {seconds:g} s and was stopped (a model this large, or "
            "custom code that does not return, cannot be handled by this server)",
            {"timeout_seconds": seconds},
        )


def runs_user_code(document: Any) -> bool:
    """Whether analysing or building this document may execute user code. Anything that is not
    a plainly readable document counts as user code: the cost of a wrong 'no' is a poisoned
    shared process, the cost of a wrong 'yes' a process spawn."""
    if not isinstance(document, Mapping):
        return True  # JSON text is parsed later: read as a dict it may hold a CustomLayer
    try:
        return has_custom_code(document)
    except Exception:  # malformed (blocks not an object, nodes not a list): be safe
        return True


def _ping() -> int:
    return 0


def _analysis_json(document: Any, allow_custom_code: bool) -> dict:
    return analyze(document, allow_custom_code=allow_custom_code).to_json()


def _codegen(document: Any, allow_custom_code: bool) -> dict:
    try:
        return {"source": generate(document, allow_custom_code=allow_custom_code)}
    except GraphCompileError as exc:
        return {"errors": [e.to_dict() for e in exc.errors]}


def _label(fn: Callable) -> str:
    return getattr(fn, "__name__", "task").strip("_").replace("_", " ")


class AnalysisPool:
    def __init__(self, workers: int, allow_custom_code: bool, timeout: float = DEFAULT_TIMEOUT):
        self.allow_custom_code = allow_custom_code
        # custom code never runs in the web process: at least one process then
        self.workers = max(workers, 1) if allow_custom_code else max(workers, 0)
        self.timeout = timeout
        self._pools: dict[str, ProcessPoolExecutor | None] = {WARM: None, ONE_SHOT: None}
        self._lock = threading.Lock()

    def _executor(self, kind: str = WARM) -> ProcessPoolExecutor:
        with self._lock:
            pool = self._pools[kind]
            if pool is None:
                pool = self._pools[kind] = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init,
                    # one-shot: the process that ran user code exits after it, a fresh one comes
                    max_tasks_per_child=1 if kind == ONE_SHOT else None,
                )
            return pool

    def start(self, wait: bool = False) -> None:
        """Start every warm process now (each imports torch and warms up for a few seconds),
        not during the first burst of requests; `serve` calls this at start."""
        if self.workers == 0:
            return
        pool = self._executor()
        pings = [pool.submit(_ping) for _ in range(self.workers)]  # one process each
        if wait:
            for ping in pings:
                ping.result()

    def analysis_json(self, document: Any) -> dict:
        """The analysis as the editor gets it (errors, shapes, params, FLOPs)."""
        return self._call(_analysis_json, document)

    def codegen(self, document: Any) -> dict:
        """{"source": model.py} or {"errors": [...]} for a graph that cannot be built."""
        return self._call(_codegen, document)

    def run(self, fn, *args: Any, user_code: bool = False) -> Any:
        """fn(*args) in an analysis process (fn importable, args picklable) within the time
        limit; user_code: in a process retired right after. AnalysisUnavailable when there is
        no process or it broke, AnalysisTimeout (after killing it) when the limit passed."""
        if self.workers == 0:
            raise AnalysisUnavailable("this server runs no analysis processes")
        kind = ONE_SHOT if user_code and self.allow_custom_code else WARM
        pool = self._executor(kind)
        try:
            future = pool.submit(fn, *args)
        except BrokenProcessPool:
            self._broken(fn, kind, pool)
        except RuntimeError:  # shut down just now by another request's timeout
            raise AnalysisUnavailable("the analysis processes are being replaced") from None
        try:
            return future.result(timeout=self.timeout)
        except BrokenProcessPool:
            self._broken(fn, kind, pool)
        except FutureTimeout:
            if future.cancel():  # still queued: every process was busy, nothing ran
                log.warning(
                    "%s: no %s analysis process free for %gs", _label(fn), kind, self.timeout
                )
                raise AnalysisUnavailable("every analysis process is busy") from None
            log.warning(
                "%s: still running after %gs in a %s analysis process; killing its pool",
                _label(fn),
                self.timeout,
                kind,
            )
            self._retire(kind, pool, kill=True)
            raise AnalysisTimeout(_label(fn).capitalize(), self.timeout) from None

    def _broken(self, fn, kind: str, pool: ProcessPoolExecutor) -> NoReturn:
        log.warning("%s: the %s analysis process stopped; replacing the pool", _label(fn), kind)
        self._retire(kind, pool)
        raise AnalysisUnavailable("the analysis process stopped")

    def run_or_here(self, fn, *args: Any, user_code: bool = False) -> Any:
        """fn(*args) in an analysis process, or in the web process on a server that runs none
        (analysis_workers=0, so custom code is off): for tasks bounded by the validation limits
        (graph_compiler/limits.py), such as a model build on the meta device."""
        if self.workers == 0:
            return fn(*args)
        return self.run(fn, *args, user_code=user_code)

    def _call(self, fn, document: Any) -> dict:
        if self.workers == 0:
            return fn(document, False)
        user_code = self.allow_custom_code and runs_user_code(document)
        try:
            return self.run(fn, document, self.allow_custom_code, user_code=user_code)
        except (AnalysisTimeout, AnalysisUnavailable) as exc:
            if isinstance(exc, AnalysisTimeout) or self.allow_custom_code:
                raise
            reason = str(exc)
        except Exception as exc:  # the document could not be sent (e.g. nested too deep)
            reason = f"the document could not be sent to the analysis process ({exc})"
            if self.allow_custom_code:
                log.warning("%s: %s; refused (custom code is allowed)", _label(fn), reason)
                raise AnalysisUnavailable(reason) from None
        log.warning("%s: %s; answered in the web process", _label(fn), reason)
        return fn(document, False)

    def _retire(self, kind: str, pool: ProcessPoolExecutor, kill: bool = False) -> None:
        """Forget a pool (the next request starts a fresh one), killing its processes first when
        one is stuck (a timed-out task cannot be cancelled any other way)."""
        with self._lock:
            if self._pools[kind] is pool:
                self._pools[kind] = None
        if kill:
            for process in list((pool._processes or {}).values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if kill and kind == WARM:
            self.start()  # warm up the replacement now, not during the next request

    def close(self) -> None:
        with self._lock:
            pools = [p for p in self._pools.values() if p is not None]
            self._pools = {WARM: None, ONE_SHOT: None}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
