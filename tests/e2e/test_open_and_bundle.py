"""The editor's first load stays small (CodeMirror and the layout code are lazy chunks), and a
500-node graph opens with its shapes. The timings are measured by bench/editor_perf.py, not here:
timed asserts are flaky on a shared machine."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.graphs import chain, first_load_gzip


def test_the_first_load_is_at_most_400_kb_gzip():
    assert first_load_gzip() / 1024 <= 400


def test_a_500_node_graph_opens_with_its_shapes(page, live):
    big = live.call("POST", "/api/projects", {"document": chain(497)})[1]["id"]
    login(page, live)
    page.goto(f"{live.url}/#/p/{big}")
    page.wait_for_function(
        """() => document.querySelectorAll('.react-flow__node').length > 0 &&
               [...document.querySelectorAll('[data-testid^="edge-label-"]')]
                 .some((el) => el.textContent === 'B×64')"""
    )
    expect(page.locator("body")).to_contain_text("500 nodes")
