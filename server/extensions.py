"""Flask extension objects: the only module-level state the server has."""

from __future__ import annotations

from flask_socketio import SocketIO

socketio = SocketIO()
