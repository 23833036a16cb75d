"""Browser end-to-end tests: the built editor (frontend/dist) in the system Chromium, driven by
Playwright, against a real server on a free port with a temporary data dir.

Skipped, with the reason, when Chromium, the playwright package or the built editor is missing
(`npm test` builds the editor before it runs pytest). Screenshots of each test's final state go
to tests/e2e/artifacts/ (not committed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from server.app import FRONTEND_DIST
from tests.server_live import TOKEN, LiveServer

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("TORCHLOOM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if not (FRONTEND_DIST / "index.html").exists():
        return "the editor is not built (frontend/dist): run `npm test` or frontend/build.sh"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    if reason is None:
        return
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # a loaded CI machine validates more slowly

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(
        tmp_path_factory.mktemp("e2e") / "data", seed_examples=False, start_runner=False
    )
    yield server
    server.close()


@contextlib.contextmanager
def checked_page(browser, request, *, width: int, height: int, timeout_ms: int, init_script=None):
    """A page in a fresh context that fails the test on an uncaught error or a CSP violation
    (the built editor must run under the server's CSP: no inline scripts, no eval), with a
    screenshot of its final state in tests/e2e/artifacts/."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True
    )
    context.set_default_timeout(timeout_ms)
    if init_script:
        context.add_init_script(init_script)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    pg.errors = errors
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(browser, live, request):
    with checked_page(browser, request, width=1280, height=800, timeout_ms=10_000) as pg:
        yield pg


def login(page, live) -> None:
    """Open the start URL (token → cookie) and wait for the editor to show a project."""
    page.goto(f"{live.url}/?token={TOKEN}")
    page.get_by_test_id("canvas").wait_for()
    page.wait_for_function("() => location.hash.startsWith('#/p/')")
