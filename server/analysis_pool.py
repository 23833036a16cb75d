"""Graph analysis (what /api/validate answers) in a few processes of its own.

What runs here: validation and code generation (both analyse the graph), and the check of a
graph before a run starts. Why processes: an analysis is pure Python, so in the web process
fifty concurrent validations take turns on one GIL and all finish near the end; N processes
answer N at a time. And with `--allow-custom-code`, analysing a CustomLayer executes its class
definition: that user code must not run in the web process, so with custom code allowed every
analysis goes to the pool (one process at least), whatever `analysis_workers` says.

The pool starts on first use or on start() (`torchloom serve` and the WSGI entry start it at
launch; tests that never validate pay nothing); each process pays torch's import and warm-up
once. A pool that breaks (a process killed) is replaced on the next request; the request that
saw it break is answered in-process when that is allowed.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from graph_compiler import GraphCompileError, analyze, generate


def _warm() -> None:
    from graph_compiler import warmup

    warmup()


class AnalysisUnavailable(RuntimeError):
    """The analysis processes are gone and the analysis may not run in the web process."""


def _ping() -> int:
    return 0


def _analysis_json(document: Any, allow_custom_code: bool) -> dict:
    return analyze(document, allow_custom_code=allow_custom_code).to_json()


def _codegen(document: Any, allow_custom_code: bool) -> dict:
    try:
        return {"source": generate(document, allow_custom_code=allow_custom_code)}
    except GraphCompileError as exc:
        return {"errors": [e.to_dict() for e in exc.errors]}


class AnalysisPool:
    def __init__(self, workers: int, allow_custom_code: bool):
        self.allow_custom_code = allow_custom_code
        # custom code never runs in the web process: at least one process then
        self.workers = max(workers, 1) if allow_custom_code else max(workers, 0)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_warm,
                )
            return self._pool

    def start(self, wait: bool = False) -> None:
        """Start every process now (each imports torch and warms up for a few seconds), not
        during the first burst of requests; `serve` calls this at start."""
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

    def run(self, fn, *args: Any) -> Any:
        """fn(*args) in an analysis process (fn importable, args picklable); work that executes
        user code comes here (custom code allowed guarantees a process)."""
        if self.workers == 0:
            raise AnalysisUnavailable("this server runs no analysis processes")
        pool = self._executor()
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise AnalysisUnavailable("the analysis process stopped") from None

    def _call(self, fn, document: Any) -> dict:
        if self.workers == 0:
            return fn(document, False)
        try:
            return self.run(fn, document, self.allow_custom_code)
        except AnalysisUnavailable:
            reason = "the analysis process stopped"
        except Exception as exc:  # the document could not be sent (e.g. nested too deep)
            reason = f"the document could not be sent to the analysis process ({exc})"
        if self.allow_custom_code:
            raise AnalysisUnavailable(reason)
        return fn(document, False)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
