"""Browser end-to-end test of the language-model flow as a newcomer does it (issue 13): open the
GPT mini example, see the tied head's badge and the Dataset panel's decoded text next to its
token ids, shorten the run, Train, read the perplexity, then in the playground continue a prompt:
the text streams in piece by piece, a seed repeats it, Stop ends a long generation, and every
character is one of the source's alphabet.

Controls are found by role and accessible name where the page gives them one (that is also a
check that it does). Prints the time from opening the example to a stopped generation.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from server.engine.data.markov_text import ALPHABET
from tests.served import Served

from .conftest import ARTIFACTS, checked_page, login

STREAMED = 600  # characters generated in the streaming check


@pytest.fixture(scope="module")
def live_runs(tmp_path_factory):
    # the production default, as `npm start` serves: gunicorn with one gevent worker
    server = Served(tmp_path_factory.mktemp("e2e-lm") / "data").ready()
    yield server
    server.close()


@pytest.fixture
def lpage(browser, live_runs, request):
    with checked_page(browser, request, width=1400, height=900, timeout_ms=30_000) as pg:
        yield pg


def _generated(page) -> str:
    """The generated continuation: the log's text less the prompt (shown muted before it)."""
    log = page.get_by_role("log", name="Generated text")
    whole = log.inner_text()
    prompt = log.locator(".muted").inner_text()
    assert whole.startswith(prompt), (whole, prompt)
    return whole[len(prompt) :]


def _generate(page, form, *, prompt: str, seed: int, max_new: int) -> None:
    form.get_by_role("textbox", name="Prompt").fill(prompt)
    form.get_by_role("spinbutton", name="Seed").fill(str(seed))
    form.get_by_role("spinbutton", name="Max new tokens").fill(str(max_new))
    form.get_by_role("button", name="Generate").click()


def test_language_model_train_and_generate(lpage, live_runs):
    page, live = lpage, live_runs
    login(page, live)
    t0 = time.perf_counter()

    # ---- open the example --------------------------------------------------------------------
    page.get_by_role("button", name="Project").click()
    page.get_by_role("menuitem", name="Examples…").click()
    page.get_by_role("dialog").get_by_role("button", name=re.compile("^GPT mini")).click()
    expect(page.get_by_role("textbox", name="Project name")).to_have_value("GPT mini")
    expect(page.get_by_test_id("valid-state")).to_have_text("Valid")

    # the output head shares the token embedding's weight, and says so on the canvas
    expect(page.get_by_role("note", name="weight tied to token embedding")).to_be_visible()

    # ---- the Dataset panel: decoded text next to token ids; fewer samples for a short run -----
    page.get_by_test_id("node-data").locator(".gnode-title").click()
    preview = page.get_by_test_id("dataset-preview")
    expect(preview).to_contain_text("language_model")
    tokens = preview.get_by_test_id("dataset-tokens").first
    expect(tokens).to_be_visible()
    text = tokens.locator(".ds-text").inner_text()
    assert text and set(text) <= set(ALPHABET), text
    cells = tokens.locator(".ds-token")
    assert cells.count() >= 8
    first = cells.first
    shown, ident = first.locator("code").inner_text(), int(first.locator("sub").inner_text())
    assert 0 <= ident < len(ALPHABET) and ALPHABET[ident] == (shown or " ")
    page.get_by_role("spinbutton", name="samples").fill("1600")

    # ---- train for a few epochs --------------------------------------------------------------
    page.get_by_role("button", name="Run settings").click()
    page.get_by_role("spinbutton", name="Epochs").fill("5")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Train", exact=True).click()
    panel = page.get_by_test_id("run-panel")
    panel.wait_for()
    run_id = panel.get_attribute("data-run")
    assert live.run(run_id)["overrides"] == {"epochs": 5}
    page.wait_for_selector(
        f'[data-testid=run-panel][data-run="{run_id}"][data-status=finished]', timeout=60_000
    )
    t_trained = time.perf_counter()
    # the run panel names a language model's figure: perplexity, as a stat and a chart
    shown = panel.get_by_test_id("run-metric").inner_text()
    perplexity = float(re.fullmatch(r"perplexity ([\d.]+)", shown).group(1))
    expect(panel.get_by_text("Validation perplexity", exact=True)).to_be_visible()
    # a uniform guess over the 22 characters scores 22; a few short epochs already learn much of
    # the chain's sparse transitions (2 to 4 next characters per context)
    assert 1.0 < perplexity < 16.0, shown
    # and the run is judged by it: the best epoch is the lowest perplexity
    expect(panel.get_by_test_id("run-best-metric")).to_have_text(re.compile(r"^perplexity "))
    assert live.run(run_id)["status"] == "finished"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "language_model_run_panel.png"))

    # ---- the playground: a prompt continued, streamed in pieces ------------------------------
    page.get_by_role("tab", name="Playground").click()
    form = page.get_by_role("form", name="Generate text")
    expect(form).to_be_visible()
    # a character outside the vocabulary: a plain error, not a failure
    _generate(page, form, prompt="XYZ", seed=1, max_new=20)
    expect(form.get_by_role("alert")).to_contain_text("'X' at position 0 is not in the vocabulary")

    prompt = "the "
    t_gen = time.perf_counter()
    # long enough that the server's ~0.1 s sampling slices cannot finish it in one piece even on
    # a fast, idle machine (the tiny model samples ~100 tokens per slice there)
    _generate(page, form, prompt=prompt, seed=7, max_new=STREAMED)
    lengths: list[int] = []
    deadline = time.time() + 120
    while time.time() < deadline:
        n = len(_generated(page))
        if not lengths or n != lengths[-1]:
            lengths.append(n)
        if form.get_by_role("button", name="Generate").is_enabled():
            break
        page.wait_for_timeout(20)
    expect(form.get_by_role("button", name="Generate")).to_be_enabled()
    gen_s = time.perf_counter() - t_gen
    first_text = _generated(page)
    assert len(first_text) == STREAMED, first_text
    assert set(first_text) <= set(ALPHABET), set(first_text) - set(ALPHABET)
    # streamed: the page showed the text growing through at least two partial lengths
    assert len([n for n in lengths if 0 < n < STREAMED]) >= 2, f"the text did not stream: {lengths}"
    # the text wraps inside the panel (sampled runs without spaces once overflowed it)
    log = form.get_by_role("log", name="Generated text")
    assert log.evaluate("e => e.scrollWidth <= e.clientWidth"), "the text overflows the panel"

    # the same seed gives the same text (sampled token by token: a shorter run is its prefix)
    _generate(page, form, prompt=prompt, seed=7, max_new=120)
    expect(form.get_by_role("button", name="Generate")).to_be_enabled(timeout=30_000)
    assert _generated(page) == first_text[:120]

    # ---- Stop a long generation --------------------------------------------------------------
    _generate(page, form, prompt=prompt, seed=3, max_new=10_000)
    stop = form.get_by_role("button", name="Stop")
    expect(stop).to_be_enabled()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=pg-text]').textContent.length > 50"
    )
    stop.click()
    expect(form.get_by_text("stopped", exact=True)).to_be_visible()
    expect(form.get_by_role("button", name="Generate")).to_be_enabled()
    stopped = _generated(page)
    page.wait_for_timeout(1000)
    assert _generated(page) == stopped, "text kept arriving after Stop"
    assert 0 < len(stopped) < 10_000
    assert set(stopped) <= set(ALPHABET)
    total = time.perf_counter() - t0
    print(
        f"\nexample → trained {t_trained - t0:.1f} s (perplexity {perplexity:.2f}) → "
        f"generated and stopped {total:.1f} s; 120 characters took {gen_s:.1f} s in "
        f"{len(lengths)} visible steps"
    )
