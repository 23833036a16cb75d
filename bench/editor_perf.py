"""Editor performance in headless Chromium against the real server (issue 5):

    .venv/bin/python bench/editor_perf.py [--repeats 3]

- a 500-node graph opens and renders: navigation start → nodes drawn and the first shape on an
  edge (target < 1.5 s);
- an edit on a 100-node graph shows its updated shape: the input event → the new edge label
  (target < 300 ms; the editor waits 150 ms for typing to pause before it validates);
- the first-load bundle: index.html's scripts and styles, gzip (target ≤ 400 KB; CodeMirror and
  the layout code are lazy chunks).

Needs the built editor (frontend/build.sh) and Chromium. Prints a table; figures go to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.app import FRONTEND_DIST
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.graphs import chain, first_load_gzip
from tests.server_live import TOKEN, LiveServer

EDIT_PROBE = """(want) => {
  window.__editMs = new Promise((resolve) => {
    let t0 = 0;
    document.addEventListener('input', () => { t0 = performance.now(); },
                              { capture: true, once: true });
    const check = () => {
      const el = document.querySelector('[data-testid="edge-label-n0:out->n1:in"]');
      if (t0 && el && el.textContent === want) {
        obs.disconnect();
        resolve(performance.now() - t0);
      }
    };
    const obs = new MutationObserver(check);
    obs.observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}"""


def open_ms(page, url: str, project: str) -> float:
    page.goto("about:blank")  # a real navigation each time, not a hash change
    page.goto(f"{url}/#/p/{project}")
    # nodes on screen (the canvas draws those in view) and inferred shapes on their edges
    page.wait_for_function(
        """() => document.querySelectorAll('.react-flow__node').length > 0 &&
               [...document.querySelectorAll('[data-testid^="edge-label-"]')]
                 .some((el) => el.textContent === 'B×64')"""
    )
    return page.evaluate("() => performance.now()")  # counts from the navigation's start


def edit_ms(page, url: str, project: str, values: list[str]) -> list[float]:
    page.goto(f"{url}/#/p/{project}")
    page.reload()
    page.wait_for_function(
        """() => document.querySelector('[data-testid="edge-label-n0:out->n1:in"]')
               ?.textContent === 'B×64'"""
    )
    page.get_by_test_id("node-n0").locator(".gnode-title").click()
    times = []
    for value in values:
        page.evaluate(EDIT_PROBE, f"B×{value}")
        page.get_by_test_id("param-out_features").fill(value)
        times.append(page.evaluate("() => window.__editMs"))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="page opens of the 500-node graph")
    args = ap.parse_args()
    if not (FRONTEND_DIST / "index.html").exists():
        raise SystemExit("build the editor first: bash frontend/build.sh")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        live = LiveServer(Path(tmp) / "data", seed_examples=False, start_runner=False)
        try:
            big = live.call("POST", "/api/projects", {"document": chain(497)})[1]["id"]
            mid = live.call("POST", "/api/projects", {"document": chain(97)})[1]["id"]
            live.call("POST", "/api/validate", {"document": chain(497)})  # warm server caches
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{live.url}/?token={TOKEN}")
            page.get_by_test_id("canvas").wait_for()
            opens = [open_ms(page, live.url, big) for _ in range(args.repeats)]
            edits = edit_ms(page, live.url, mid, [str(v) for v in range(77, 84)])
            browser.close()
        finally:
            live.close()
    bundle_kb = first_load_gzip() / 1024
    rows = [
        ("open + render, 500 nodes (ms)", statistics.median(opens), max(opens), 1500),
        ("edit → new shape, 100 nodes (ms)", statistics.median(edits), max(edits), 300),
        ("first-load bundle, gzip (KB)", bundle_kb, bundle_kb, 400),
    ]
    print(json.dumps({"opens_ms": opens, "edits_ms": edits, "bundle_kb": round(bundle_kb, 1)}))
    print("| measure | median | max | target | verdict |")
    print("|---|---|---|---|---|")
    for name, median, worst, target in rows:
        verdict = "**PASS**" if median <= target else "miss"
        print(f"| {name} | {median:,.0f} | {worst:,.0f} | < {target} | {verdict} |")


if __name__ == "__main__":
    main()
