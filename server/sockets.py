"""Socket.IO: authenticated connects, and per-run rooms with exact replay.

A client subscribes with the last sequence number it has; it receives exactly the stored
events after it (from the database), then live ones from the room: no gaps, no duplicates
(the client drops anything at or below the last sequence it holds, which covers the short
overlap between the replay and the live stream). The reply can arrive after the first live
events (they are sent as soon as the client is in the room), so a client holds live events
until the reply is in and applies the reply first.

With a Redis URL the room spans server processes: an event emitted by the process that runs
the scheduler reaches, through the message queue, the clients of every other process (each
keeps its own room members; the queue carries the emit, in order).
"""

from __future__ import annotations

from flask import current_app, request
from flask_socketio import SocketIO, join_room, leave_room

from .rules import REPLAY_LIMIT
from .security import COOKIE, host_allowed, token_matches

SEQ_LIMIT = 2**63  # sequence numbers are SQLite integers: 64-bit signed


def room(run_id: str) -> str:
    return f"run:{run_id}"


def _json_type(value) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def subscription(message) -> tuple[str, int] | str:
    """(run id, last sequence held) from a subscribe message, or why it cannot be one."""
    usage = "subscribe needs {run_id: string, after: integer from 0 to 2^63 - 1}"
    if not isinstance(message, dict):
        return f"{usage}, not {_json_type(message)}"
    run_id, after = message.get("run_id"), message.get("after", 0)
    if not isinstance(run_id, str):
        return f"{usage}; run_id is {_json_type(run_id)}"
    # bool is an int in Python, but `after: true` is a client bug, not sequence 1
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < SEQ_LIMIT:
        shown = after if isinstance(after, int) and not isinstance(after, bool) else None
        return f"{usage}; after is {shown if shown is not None else _json_type(after)}"
    return run_id, after


def register(socketio: SocketIO) -> None:
    # called after every init_app: each app gets its own Socket.IO server, which needs the
    # handlers registered on it
    from .generation_events import register_generation

    register_generation(socketio)

    @socketio.on("connect")
    def connect(auth=None):
        cfg = current_app.config["TORCHLOOM"]
        if not host_allowed(request.environ.get("HTTP_HOST"), cfg):
            return False
        given = (auth or {}).get("token") if isinstance(auth, dict) else None
        given = given or request.cookies.get(COOKIE)
        return token_matches(given, cfg.token)

    @socketio.on("subscribe")
    def subscribe(message):
        parsed = subscription(message)
        if isinstance(parsed, str):
            return {"ok": False, "error": parsed}
        run_id, after = parsed
        services = current_app.extensions["torchloom"]
        from .storage import runs as run_store

        if run_store.get(services.db, run_id) is None:
            return {"ok": False, "error": f"run {run_id} does not exist"}
        join_room(room(run_id))  # join first, then replay: nothing falls between the two
        replay = run_store.events_after(services.db, run_id, after, limit=REPLAY_LIMIT)
        return {"ok": True, "events": replay}

    @socketio.on("unsubscribe")
    def unsubscribe(message):
        run_id = message.get("run_id") if isinstance(message, dict) else None
        if isinstance(run_id, str):
            leave_room(room(run_id))
        return {"ok": True}
