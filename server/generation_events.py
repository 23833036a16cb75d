"""Socket.IO events of the playground's generation: a language-model run's continuation of a
prompt, streamed to the asking client as it is sampled.

    client → "generate" {run_id, prompt, max_new_tokens, temperature, top_k, seed}
             reply {ok: true, id} | {ok: false, error}
    server → "generation" {id, text}                     a piece of the continuation
    server → "generation_end" {id, reason: "done" | "stopped" | "error", error?}
    client → "generate_stop" {id}                        reply {ok}

The model never runs in the web process when the server has analysis processes (the same
isolation as predictions, server/exports/isolated.py): a background task asks them for one
slice of sampling at a time (language_model.SLICE_SECONDS; longer for a graph with custom code,
whose every slice runs in a fresh process that builds the model again), emits that slice's
pieces, and continues from the slice's saved progress, so a Stop (or the client leaving) takes
effect between slices and the text is exactly what one uninterrupted generation with the same
seed gives. One generation per client: a new one stops the one before.
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

from flask import current_app, request
from flask_socketio import SocketIO

from .analysis_pool import AnalysisTimeout, AnalysisUnavailable
from .engine.sampling import GenerationError, SampleSettings
from .errors import ApiError

log = logging.getLogger("torchloom.generation")

SETTINGS = ("max_new_tokens", "temperature", "top_k", "seed")
MAX_PROMPT_CHARS = 10_000
USER_CODE_SLICE_SECONDS = 3.0


def generation_request(message) -> tuple[str, str, SampleSettings] | str:
    """(run id, prompt, settings) from a generate message, or why it cannot be one."""
    if not isinstance(message, dict):
        return "generate needs {run_id, prompt, max_new_tokens, temperature, top_k, seed}"
    run_id, prompt = message.get("run_id"), message.get("prompt")
    if not isinstance(run_id, str):
        return "generate needs run_id: a string"
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
        return f"generate needs prompt: a string of at most {MAX_PROMPT_CHARS} characters"
    given = {k: message[k] for k in SETTINGS if message.get(k) is not None}
    try:
        settings = SampleSettings(**given).checked()
    except GenerationError as exc:
        return str(exc)
    return run_id, prompt, settings


class Generations:
    """The stop flag of each client's generation in progress (by Socket.IO session id)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: dict[str, tuple[str, threading.Event]] = {}

    def begin(self, sid: str, gen_id: str) -> threading.Event:
        stop = threading.Event()
        with self._lock:
            previous = self._running.get(sid)
            self._running[sid] = (gen_id, stop)
        if previous is not None:
            previous[1].set()
        return stop

    def stop(self, sid: str, gen_id: str | None = None) -> bool:
        with self._lock:
            current = self._running.get(sid)
            if current is None or (gen_id is not None and current[0] != gen_id):
                return False
            del self._running[sid]
        current[1].set()
        return True

    def end(self, sid: str, gen_id: str) -> None:
        with self._lock:
            if self._running.get(sid, (None,))[0] == gen_id:
                del self._running[sid]


def register_generation(socketio: SocketIO) -> None:
    generations = Generations()

    @socketio.on("generate")
    def generate(message):
        parsed = generation_request(message)
        if isinstance(parsed, str):
            return {"ok": False, "error": parsed}
        run_id, prompt, settings = parsed
        from .exports import run_files
        from .storage import runs as run_store

        services = current_app.extensions["torchloom"]
        run = run_store.get(services.db, run_id)
        if run is None:
            return {"ok": False, "error": f"run {run_id} does not exist"}
        try:
            files = run_files(run, services.data.run_dir(run_id))
        except ApiError as exc:
            return {"ok": False, "error": exc.message}
        gen_id = secrets.token_hex(8)
        sid = request.sid
        stop = generations.begin(sid, gen_id)
        body = {"prompt": prompt, "settings": {k: getattr(settings, k) for k in SETTINGS}}
        socketio.start_background_task(
            _stream, socketio, services, generations, sid, gen_id, files, body, stop
        )
        return {"ok": True, "id": gen_id}

    @socketio.on("generate_stop")
    def generate_stop(message):
        gen_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(gen_id, str):
            return {"ok": False}
        return {"ok": generations.stop(request.sid, gen_id)}

    @socketio.on("disconnect")
    def disconnect(*_):
        generations.stop(request.sid)


def _stream(socketio, services, generations, sid, gen_id, files, body, stop) -> None:
    from graph_compiler.custom import has_custom_code

    from .exports.isolated import run_model_task, unwrap

    allow = services.config.allow_custom_code
    user_code = allow and has_custom_code(files.document)
    if user_code:  # each slice is a fresh process that builds the model again: longer slices
        body = {**body, "seconds": USER_CODE_SLICE_SECONDS}
    datasets_root = Path(services.data.root) / "datasets"
    end: dict = {"id": gen_id, "reason": "done"}
    try:
        while True:
            if stop.is_set():
                end["reason"] = "stopped"
                break
            result = services.analysis.run_or_here(
                run_model_task,
                "generate",
                files,
                body,
                datasets_root,
                allow,
                user_code=user_code,
            )
            piece = unwrap(result)
            for text in piece["pieces"]:
                socketio.emit("generation", {"id": gen_id, "text": text}, to=sid)
            if piece["done"]:
                break
            body = {**body, "progress": piece["progress"]}
    except (ApiError, AnalysisTimeout) as exc:
        end = {"id": gen_id, "reason": "error", "error": exc.message}
    except AnalysisUnavailable as exc:
        end = {"id": gen_id, "reason": "error", "error": f"{exc}; try again"}
    except Exception:  # a bug: the client still hears that the generation ended
        log.exception("generation %s of run %s failed", gen_id, files.run_id)
        end = {"id": gen_id, "reason": "error", "error": "the generation failed (see the log)"}
    finally:
        generations.end(sid, gen_id)
        socketio.emit("generation_end", end, to=sid)
