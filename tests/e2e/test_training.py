"""Browser end-to-end tests of training in the page (issue 6), against a real server with its run
scheduler: open the digits MLP example, Train, watch the chart grow, see the validation accuracy,
try the model in the playground, download the ONNX and check it in onnxruntime against the run's
own prediction for the same input; then Stop / Resume a run and reload mid-run (the chart holds
every step the server stored).

Prints the time from opening the example to a trained, tried and downloaded model.
"""

from __future__ import annotations

import json
import re
import time
import zipfile

import numpy as np
import pytest

from tests.served import Served
from tests.server_live import EXAMPLES, TOKEN

from .conftest import checked_page, login


@pytest.fixture(scope="module")
def live_runs(tmp_path_factory):
    # the production default, as `npm start` serves: gunicorn with one gevent worker
    server = Served(tmp_path_factory.mktemp("e2e-train") / "data").ready()
    yield server
    server.close()


# long tasks (main-thread work over 50 ms): the charts must not freeze the editor
LONG_TASKS = (
    "window.__longTasks = [];"
    "try { new PerformanceObserver((l) => { for (const e of l.getEntries())"
    " window.__longTasks.push(e.duration); }).observe({ entryTypes: ['longtask'] }); }"
    " catch (e) {}"
)
# the editor loads window.__torchloomRuns (frontend/src/testHooks.ts) only when asked
TEST_HOOKS = "window.__torchloomTestHooks = true;"


@pytest.fixture
def tpage(browser, live_runs, request):
    # a longer timeout: the machine may be busy with other tests
    with checked_page(
        browser,
        request,
        width=1400,
        height=900,
        timeout_ms=30_000,
        init_script=LONG_TASKS + TEST_HOOKS,
    ) as pg:
        yield pg


def _points(page) -> int:
    return int(page.get_by_test_id("chart-step-loss").get_attribute("data-points") or 0)


def _panel(page):
    return page.get_by_test_id("run-panel")


def _stored_steps(live, run_id: str, upto: int) -> dict[int, float]:
    """step → loss of the run's stored step events with seq ≤ upto (a later event wins)."""
    out: dict[int, float] = {}
    after = 0
    while True:
        status, body = live.call("GET", f"/api/runs/{run_id}/events?after={after}&limit=10000")
        assert status == 200, body
        for e in body["events"]:
            if e["seq"] <= upto and e["type"] == "step":
                out[int(e["data"]["step"])] = e["data"]["loss"]
        if body["next_after"] is None:
            return out
        after = body["next_after"]


def _onnx_logits(onnx_bytes: bytes, preprocess: dict, x_raw: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    norm = preprocess["normalizer"]
    x = x_raw.astype(np.float32)[None]
    if norm.get("kind") not in (None, "none"):
        x = (x - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x.astype(np.float32)})[0][0]


def test_example_to_trained_tried_downloaded_model(tpage, live_runs, tmp_path):
    page, live = tpage, live_runs
    login(page, live)

    # ---- open the example, train it --------------------------------------------------------
    t0 = time.perf_counter()
    page.get_by_test_id("menu-project").click()
    page.get_by_test_id("menu-examples").click()
    page.get_by_test_id("example-digits_mlp").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=project-name]')?.value === 'Digits MLP'"
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=valid-state]')?.textContent === 'Valid'"
    )
    page.get_by_test_id("train").click()
    panel = _panel(page)
    panel.wait_for()
    run_id = panel.get_attribute("data-run")
    assert run_id

    # the step-loss chart gains points while the run is running
    seen: list[int] = []
    deadline = time.time() + 60
    while time.time() < deadline:
        status = panel.get_attribute("data-status")
        n = _points(page)
        if status == "running" and (not seen or n > seen[-1]):
            seen.append(n)
        if status == "finished":
            break
        page.wait_for_timeout(60)
    page.wait_for_selector(f'[data-testid=run-panel][data-run="{run_id}"][data-status=finished]')
    t_trained = time.perf_counter()
    growth = [n for n in seen if n > 0]
    assert len(growth) >= 3, f"the chart did not grow while running: {seen}"

    best = page.get_by_test_id("run-best-metric").inner_text()
    accuracy = float(re.search(r"([\d.]+)%", best).group(1))
    assert accuracy >= 90.0, best
    run = live.run(run_id)
    assert run["status"] == "finished" and run["best_metric"] >= 0.9
    # every stored step is on the chart
    stored = _stored_steps(live, run_id, run["last_seq"])
    assert _points(page) == len(stored)

    # ---- playground: a validation sample, then a drawing (live prediction via {input}) ----
    page.get_by_test_id("runs-tab-playground").click()
    page.get_by_test_id("pg-index").fill("5")
    page.get_by_test_id("pg-predict").click()
    expect_text = page.get_by_test_id("pg-prediction")
    expect_text.wait_for()
    status, own = live.call("POST", f"/api/runs/{run_id}/predict", {"index": 5})
    assert status == 200, own
    page.wait_for_function(
        "(p) => document.querySelector('[data-testid=pg-prediction]')?.textContent === p",
        arg=str(own.get("prediction_name", own["prediction"])),
    )
    page.get_by_test_id("pg-true").wait_for()
    assert page.get_by_test_id("pg-probs").locator(".prob-row").count() == 10

    drawn: list[dict] = []

    def on_response(resp):
        if resp.url.endswith("/predict") and resp.request.method == "POST":
            body = json.loads(resp.request.post_data or "{}")
            if "input" in body and resp.status == 200:
                drawn.append({"input": body["input"], "result": resp.json()})

    page.on("response", on_response)
    box = page.get_by_test_id("pg-canvas").bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + 55, y0 + 30)
    page.mouse.down()
    page.mouse.move(x0 + 115, y0 + 30, steps=6)
    page.mouse.move(x0 + 70, y0 + 140, steps=8)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('[data-testid=pg-result]') !== null")
    deadline = time.time() + 30
    while not drawn and time.time() < deadline:
        page.wait_for_timeout(100)
    assert drawn, "drawing did not predict"
    page.get_by_test_id("pg-confusion").wait_for()
    t_tried = time.perf_counter()

    # ---- downloads: the ONNX (with its parity figure) -------------------------------------
    page.get_by_test_id("runs-tab-downloads").click()
    page.get_by_test_id("dl-onnx-parity").wait_for(timeout=60_000)
    parity = float(page.get_by_test_id("dl-onnx-parity").get_attribute("data-max-abs-diff"))
    assert parity <= 1e-4
    with page.expect_download() as dl:
        page.get_by_test_id("dl-model-onnx").click()
    onnx_path = tmp_path / "model.onnx"
    dl.value.save_as(onnx_path)
    t_downloaded = time.perf_counter()
    with page.expect_download() as dl_zip:
        page.get_by_test_id("dl-code-zip").click()
    zip_path = tmp_path / "code.zip"
    dl_zip.value.save_as(zip_path)

    # ---- the ONNX in onnxruntime against the run's own predictions for the same inputs ----
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        assert {"model.py", "train.py"} <= {n.split("/")[-1] for n in names}
        pre_name = next(n for n in names if n.endswith("preprocess.json"))
        preprocess = json.loads(z.read(pre_name))
    onnx_bytes = onnx_path.read_bytes()
    # the drawing the page sent, and a digit from the dataset
    from sklearn.datasets import load_digits

    cases = [
        (np.asarray(drawn[-1]["input"], np.float32), drawn[-1]["result"]),
    ]
    sample = load_digits().data[7].astype(np.float32)
    status, body = live.call("POST", f"/api/runs/{run_id}/predict", {"input": sample.tolist()})
    assert status == 200, body
    cases.append((sample, body))
    for x, result in cases:
        ours = _onnx_logits(onnx_bytes, preprocess, x)
        theirs = np.asarray(result["outputs"][0], np.float32)
        assert np.max(np.abs(ours - theirs)) <= 1e-4, (ours, theirs)
        assert int(np.argmax(ours)) == result["prediction"]

    total = t_downloaded - t0
    print(
        f"\nexample → trained {t_trained - t0:.1f} s → tried {t_tried - t0:.1f} s → "
        f"downloaded model.onnx {total:.1f} s (then code.zip; val accuracy {accuracy:.1f} %, "
        f"ONNX parity {parity:.1e})"
    )
    assert total < 60, f"example to downloaded model took {total:.1f} s"


def test_stop_resume_and_reload_mid_run(tpage, live_runs):
    page, live = tpage, live_runs
    login(page, live)
    page.get_by_test_id("menu-project").click()
    page.get_by_test_id("menu-examples").click()
    page.get_by_test_id("example-digits_mlp").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=valid-state]')?.textContent === 'Valid'"
    )
    # a long run through the settings popover
    page.get_by_test_id("run-settings-open").click()
    page.get_by_test_id("set-epochs").fill("400")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")  # the Train shortcut
    panel = _panel(page)
    panel.wait_for()
    run_id = panel.get_attribute("data-run")
    assert live.run(run_id)["overrides"] == {"epochs": 400}
    page.wait_for_selector(f'[data-testid=run-panel][data-run="{run_id}"][data-status=running]')
    page.wait_for_function(
        "() => +document.querySelector('[data-testid=chart-step-loss]').dataset.points > 60"
    )

    # Stop: the panel shows the run stopped (how fast is a measurement, not a check: browser,
    # server and worker share 2 cores here; 30 s only catches a stop that never lands)
    t = time.perf_counter()
    page.get_by_test_id("run-stop").click()
    page.wait_for_selector(
        f'[data-testid=run-panel][data-run="{run_id}"][data-status=stopped]', timeout=30_000
    )
    stop_s = time.perf_counter() - t  # printed below
    assert live.run(run_id)["status"] == "stopped"
    stopped_at = _points(page)

    # Resume: the same run continues from its checkpoint
    page.get_by_test_id("run-resume").click()
    page.wait_for_selector(f'[data-testid=run-panel][data-run="{run_id}"][data-status=running]')
    page.wait_for_function(
        f"() => +document.querySelector('[data-testid=chart-step-loss]').dataset.points"
        f" > {stopped_at + 40}"
    )

    # reload mid-run: the chart is restored from the server and continues live
    page.reload()
    page.get_by_test_id("canvas").wait_for()
    page.wait_for_selector(f'[data-testid=run-panel][data-run="{run_id}"][data-status=running]')
    page.wait_for_function(
        f"() => +document.querySelector('[data-testid=chart-step-loss]').dataset.points"
        f" > {stopped_at + 80}"
    )
    page.wait_for_timeout(500)
    held = page.evaluate(f"() => window.__torchloomRuns.steps({json.dumps(run_id)})")
    stored = _stored_steps(live, run_id, held["last_seq"])
    assert held["steps"] == sorted(stored), "the chart's steps differ from the stored ones"
    assert held["losses"] == pytest.approx([stored[s] for s in sorted(stored)], rel=1e-6)
    assert held["steps"] == list(range(1, len(held["steps"]) + 1)), "a gap in the steps"
    assert _points(page) >= len(stored)

    # a lost connection: it reconnects and replays from the last sequence it holds
    before = held["last_seq"]
    connects = page.evaluate("() => window.__torchloomRuns.connects()")
    page.evaluate("() => window.__torchloomRuns.dropConnection()")
    page.wait_for_function(f"() => window.__torchloomRuns.connects() > {connects}")
    page.wait_for_function(
        "([id, seq]) => window.__torchloomRuns.steps(id).last_seq > seq + 50",
        arg=[run_id, before],
    )
    held = page.evaluate(f"() => window.__torchloomRuns.steps({json.dumps(run_id)})")
    stored = _stored_steps(live, run_id, held["last_seq"])
    assert held["steps"] == sorted(stored) == list(range(1, len(stored) + 1))

    long_tasks = page.evaluate("() => window.__longTasks")
    page.get_by_test_id("run-stop").click()
    page.wait_for_selector(f'[data-testid=run-panel][data-run="{run_id}"][data-status=stopped]')
    # while the charts followed the live run (and a reload replayed ~1000 steps), the main thread
    # never froze: typically under 100 ms here; the bound is loose because the training worker
    # and the server share this machine's two cores with the browser
    assert max(long_tasks, default=0) < 1500, long_tasks
    # the history lists both states and the run can be deleted once stopped
    page.get_by_test_id("runs-tab-history").click()
    row = page.locator(f'[data-testid=runs-row][data-run="{run_id}"]')
    row.wait_for()
    page.once("dialog", lambda d: d.accept())
    row.get_by_test_id("runs-delete").click()
    row.wait_for(state="detached")
    assert live.call("GET", f"/api/runs/{run_id}")[0] == 404
    print(
        f"\nstop took {stop_s:.2f} s; reload restored {len(held['steps'])} steps; long tasks "
        f"after the reload: {len(long_tasks)}, longest {max(long_tasks, default=0):.0f} ms"
    )


def test_validation_errors_block_the_run(tpage, live_runs):
    page, live = tpage, live_runs
    doc = json.loads((EXAMPLES / "digits_mlp.json").read_text())
    doc["name"] = "Broken MLP"
    doc["edges"] = [e for e in doc["edges"] if e["target"] != "loss" or e["source"] != "fc3"]
    status, body = live.call("POST", "/api/projects", {"document": doc})
    assert status == 201, body
    pid = body["id"]
    page.goto(f"{live.url}/?token={TOKEN}#/p/{pid}")  # straight into the project
    page.wait_for_function(
        "() => document.querySelector('[data-testid=project-name]')?.value === 'Broken MLP'"
    )
    page.get_by_test_id("train").click()
    blocked = page.get_by_test_id("train-blocked")
    blocked.wait_for()
    text = blocked.inner_text()
    assert "before training" in text and text.count("loss:") == 1, text  # the node, said once
    # above the Problems rows, not over them
    box, row = blocked.bounding_box(), page.get_by_test_id("problem").first.bounding_box()
    assert box and row and box["y"] + box["height"] <= row["y"] + 0.5
    page.wait_for_timeout(300)
    assert live.call("GET", f"/api/runs?project={pid}")[1]["runs"] == []
