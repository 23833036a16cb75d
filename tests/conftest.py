"""Fixtures shared by the server tests: an app on a temporary data dir (no runner, no examples)
and its Flask test client. A test module that needs another app defines its own `app`."""

from __future__ import annotations

import pytest

from tests.server_app import make_app


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()
