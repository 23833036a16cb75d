"""An app for Flask test-client tests: no run scheduler, a fixed token."""

from __future__ import annotations

from server.app import create_app
from server.config import ServerConfig

TOKEN = "secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_app(tmp_path, *, seed_examples: bool = False, **kw):
    return create_app(
        ServerConfig(
            data_dir=tmp_path, token=TOKEN, start_runner=False, seed_examples=seed_examples, **kw
        )
    )
