"""Flask extension objects: the only module-level state the server has."""

from __future__ import annotations

import sys

from flask_socketio import SocketIO

socketio = SocketIO()


def async_mode() -> str:
    """Socket.IO's concurrency model for this process: "gevent" where gevent has patched the
    standard library (`torchloom serve`'s worker, `gunicorn -k gevent`), "threading" otherwise
    (the werkzeug server of the tests, `gunicorn --threads`)."""
    if "gevent" not in sys.modules:  # never imported: nothing is patched
        return "threading"
    from gevent import monkey

    return "gevent" if monkey.is_module_patched("socket") else "threading"
