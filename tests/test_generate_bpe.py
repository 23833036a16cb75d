"""A language model on a BPE-tokenized text file: the run keeps its trained BPE tokenizer, and
code.zip's sample.py (torch + the `tokenizers` package, no torchloom) continues a prompt exactly
as `torchloom generate` does."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile

import pytest

from server.cli import main as torchloom
from server.engine.data.tokenizer import Tokenizer
from server.engine.trainer import Trainer
from server.exports import build_zip
from server.exports.artifacts import build_run_model
from server.exports.language_model import folder_run_files
from tests.helpers import run_unpacked, tiny_causal_lm

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

SEQ = 12
TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog met. " * 40
ARGS = ["--prompt", "the cat ", "--max-new-tokens", "30", "--seed", "5", "--temperature", "0.8"]


def bpe_lm(path) -> dict:
    data = {"source": "file", "path": str(path), "tokenizer": "bpe", "bpe_vocab_size": 300}
    return tiny_causal_lm(data | {"block_size": SEQ}, 300, SEQ, 24, 0.01, epochs=3, batch_size=32)


def test_sample_py_of_a_bpe_run_matches_torchloom_generate(tmp_path):
    corpus = tmp_path / "data" / "corpus.txt"
    corpus.parent.mkdir()
    corpus.write_text(TEXT)
    folder = tmp_path / "run"
    doc = bpe_lm(corpus)
    result = Trainer(doc, run_id="bpe", out_dir=folder, overrides={"device": "cpu"}).run()
    assert result.status == "finished", result.reason
    saved = Tokenizer.load(folder / "tokenizer.json")
    # at most bpe_vocab_size: a small text runs out of pairs worth merging first
    assert saved.kind == "bpe" and 257 < saved.vocab_size <= 300
    assert len(saved.encode("the cat sat")) < len("the cat sat")  # merges were learned

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert torchloom(["generate", str(folder), *ARGS]) == 0
    generated = out.getvalue()
    assert generated and saved.decode(saved.encode(generated)) == generated

    files = folder_run_files(folder)
    rm = build_run_model(files, allow_custom_code=False)
    data = build_zip(files, rm.analysis, rm.interface, rm.class_name, corpus.parent)
    unpacked = tmp_path / "zip"
    zipfile.ZipFile(io.BytesIO(data)).extractall(unpacked)
    assert json.loads((unpacked / "tokenizer.json").read_text())["kind"] == "bpe"
    done = run_unpacked(unpacked, "-I", "sample.py", *ARGS, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == generated
