"""Generation from a trained language-model run, end to end: `torchloom generate RUN_DIR`, the
exported code.zip's sample.py (run with nothing of the repository importable), and the
playground's stream over Socket.IO all give the same text for the same seed; runs that are not
language models, bad prompts and Stop are handled."""

from __future__ import annotations

import contextlib
import io
import threading
import zipfile

import numpy as np
import pytest

from server.cli import main as torchloom
from server.engine.data.markov_text import ALPHABET
from server.engine.data.markov_text import chain as markov_chain
from server.engine.generate import SampleSettings
from server.engine.trainer import Trainer
from server.exports import build_zip
from server.exports.artifacts import build_run_model
from server.exports.language_model import folder_run_files, language_model
from server.storage import runs as store
from tests.helpers import chain, run_unpacked, tiny_causal_lm
from tests.run_folders import fabricated_run
from tests.server_live import LiveServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

LM_RUN = "00000000000000c1"
DIGITS_RUN = "00000000000000c2"
SEQ = 16
V = len(ALPHABET)
ARGS = ["--prompt", "the ", "--max-new-tokens", "60", "--seed", "3", "--temperature", "0.9"]
SETTINGS = SampleSettings(max_new_tokens=60, temperature=0.9, seed=3)


def lm_document() -> dict:
    """A tiny GPT on markov_text; shorter contexts go through the causal mask of their own
    length."""
    data = {"source": "markov_text", "seq_len": SEQ, "samples": 2048}
    return tiny_causal_lm(data, V, SEQ, 32, 0.03, epochs=4, batch_size=64)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("gen"), start_runner=False, seed_examples=False, analysis_workers=1
    )
    services = live.services
    services.analysis.start()  # its process warms up (imports torch) while the model trains
    folder = services.data.run_dir(LM_RUN)
    document = lm_document()
    result = Trainer(document, run_id=LM_RUN, out_dir=folder, overrides={"device": "cpu"}).run()
    assert result.status == "finished", result.reason
    store.create(services.db, LM_RUN, "project", 1, document, {}, str(folder))
    store.update_run(services.db, LM_RUN, status="finished", checkpoint=result.checkpoint)
    fabricated_run(live.app, DIGITS_RUN, chain("digits", [("Linear", {"out_features": 10})]))
    yield live
    live.close()


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = torchloom(["generate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def cli_text(server) -> str:
    """What `torchloom generate RUN_DIR` ARGS prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert torchloom(["generate", str(server.services.data.run_dir(LM_RUN)), *ARGS]) == 0
    return out.getvalue()


def test_the_cli_streams_the_engines_generation(server, cli_text, capsys):
    folder = server.services.data.run_dir(LM_RUN)
    lm = language_model(build_run_model(folder_run_files(folder), allow_custom_code=False))
    assert lm.block_size == SEQ
    assert cli_text == "".join(lm.start("the ", SETTINGS).run())
    assert len(cli_text) == 60 and set(cli_text) <= set(ALPHABET)
    assert cli([str(folder), *ARGS], capsys) == (0, cli_text, "")  # the seed fixes it
    code, other, _ = cli([str(folder), *ARGS[:-4], "--seed", "4", "--temperature", "0.9"], capsys)
    assert code == 0 and other != cli_text


def test_samples_follow_the_sources_rules(server):
    """Most sampled trigrams are ones the source's order-2 chain can produce (a uniform guess
    manages about 3 in 22; the tiny model, trained for seconds, about 0.7)."""
    folder = server.services.data.run_dir(LM_RUN)
    lm = language_model(build_run_model(folder_run_files(folder), allow_custom_code=False))
    settings = SampleSettings(max_new_tokens=300, temperature=0.8, seed=1)
    text = "".join(lm.start("the " * 10, settings).run())  # a prompt longer than the block
    ids = np.array([ALPHABET.index(c) for c in text])
    possible = markov_chain(0).probs[ids[:-2], ids[1:-1], ids[2:]] > 0
    assert possible.mean() >= 0.5, text


def test_the_cli_explains_what_it_cannot_do(server, capsys):
    runs = server.services.data.run_dir(LM_RUN).parent
    code, _, err = cli([str(runs / DIGITS_RUN), "--prompt", "a"], capsys)
    assert code == 1 and "is not a language-model run" in err and "classification" in err
    code, _, err = cli([str(runs / LM_RUN), "--prompt", "thQ"], capsys)
    assert code == 1 and "'Q' at position 2 is not in the vocabulary" in err
    code, _, err = cli([str(runs / LM_RUN), "--prompt", "a", "--temperature", "-1"], capsys)
    assert code == 1 and "temperature" in err
    code, _, err = cli([str(runs / "nope"), "--prompt", "a"], capsys)
    assert code == 1 and "not a run folder" in err


def test_code_zip_sample_py_runs_without_the_repository(server, cli_text, tmp_path):
    services = server.services
    files = folder_run_files(services.data.run_dir(LM_RUN))
    rm = build_run_model(files, allow_custom_code=False)
    data = build_zip(files, rm.analysis, rm.interface, rm.class_name, services.data.root)
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert {"sample.py", "sampling.py", "tokenizer.py", "tokenizer.json", "sample.json"} <= names
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    assert "python sample.py --prompt" in (tmp_path / "README.md").read_text()
    done = run_unpacked(tmp_path, "-I", "sample.py", *ARGS, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == cli_text


def test_a_classifier_zip_has_no_sample_py(server):
    files = folder_run_files(server.services.data.run_dir(DIGITS_RUN))
    rm = build_run_model(files, allow_custom_code=False)
    data = build_zip(files, rm.analysis, rm.interface, rm.class_name, server.services.data.root)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert "sample.py" not in archive.namelist()
    assert "sample.py" not in archive.read("README.md").decode()


class Listener:
    """A socket client's generation events, until the end of the generation it asked for."""

    def __init__(self, client):
        self.pieces: list[str] = []
        self.end: dict | None = None
        self.first = threading.Event()
        self.ended = threading.Event()
        client.on("generation", self._piece)
        client.on("generation_end", self._end)

    def _piece(self, message):
        self.pieces.append(message["text"])
        self.first.set()

    def _end(self, message):
        self.end = message
        self.ended.set()


def test_the_playground_streams_the_same_text(server, cli_text):
    client = server.socket_client()
    try:
        listener = Listener(client)
        reply = client.call(
            "generate",
            {
                "run_id": LM_RUN,
                "prompt": "the ",
                "max_new_tokens": 60,
                "temperature": 0.9,
                "seed": 3,
            },
            timeout=30,
        )
        assert reply["ok"], reply
        assert listener.ended.wait(60)
        assert listener.end == {"id": reply["id"], "reason": "done"}
        assert "".join(listener.pieces) == cli_text
        assert len(listener.pieces) > 1  # streamed, not sent at once
    finally:
        client.disconnect()


def test_the_playground_stop_and_errors(server):
    client = server.socket_client()
    try:
        listener = Listener(client)
        reply = client.call(
            "generate", {"run_id": LM_RUN, "prompt": "a", "max_new_tokens": 10_000}, timeout=30
        )
        assert reply["ok"], reply
        assert listener.first.wait(60)
        assert client.call("generate_stop", {"id": reply["id"]}, timeout=10) == {"ok": True}
        assert listener.ended.wait(60)
        assert listener.end["reason"] == "stopped"
        assert len("".join(listener.pieces)) < 10_000

        listener = Listener(client)
        reply = client.call("generate", {"run_id": LM_RUN, "prompt": "aQ"}, timeout=30)
        assert listener.ended.wait(60)
        assert listener.end["reason"] == "error"
        assert "'Q' at position 1 is not in the vocabulary" in listener.end["error"]

        listener = Listener(client)
        reply = client.call("generate", {"run_id": DIGITS_RUN, "prompt": "a"}, timeout=30)
        assert listener.ended.wait(60)
        assert "not a language-model run" in listener.end["error"]

        assert client.call("generate", {"run_id": "nope", "prompt": "a"}, timeout=10) == {
            "ok": False,
            "error": "run nope does not exist",
        }
        refused = client.call("generate", {"run_id": LM_RUN, "prompt": "a", "top_k": -1})
        assert refused["ok"] is False and "top_k" in refused["error"]
    finally:
        client.disconnect()
