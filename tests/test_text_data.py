"""Text files → language-modeling windows: tokenizers trained on the training part only, the
split by position, the errors (not UTF-8, empty, block_size too long, BPE vocab too small), the
preview with decoded text, and the upload flow."""

from __future__ import annotations

import pytest
import torch

from graph_compiler.datasets import describe
from server.engine.data import DataError, file_shapes, load_data, preview, split, with_defaults

TEXT = "the cat sat on the mat. the dog sat on the log. " * 20


def _params(path, **kw):
    return {"source": "file", "path": str(path), **kw}


def test_char_windows_are_next_token_pairs_split_by_position(tmp_path):
    f = tmp_path / "corpus.txt"
    full = TEXT + "Z!" * 50  # Z and ! only in the validation part
    f.write_text(full)
    loaded = load_data(_params(f, block_size=16, val_split=0.25))
    assert loaded.task == "language_model" and loaded.x.dtype == torch.int64
    assert loaded.x.shape[1:] == (16,) and loaded.y.shape == loaded.x.shape
    assert torch.equal(loaded.x[:, 1:], loaded.y[:, :-1])
    assert torch.equal(loaded.x[1:, 0], loaded.y[:-1, -1])  # windows continue one another
    tok = loaded.tokenizer
    assert "Z" not in tok.chars and tok.vocab_size == loaded.vocab_size
    train_chars = len(full) - round(len(full) * 0.25)
    assert tok.decode(loaded.x.reshape(-1).tolist()) == full[: len(loaded.x) * 16]
    assert len(loaded.x) == (train_chars - 1) // 16
    vx, _ = loaded.val
    assert tok.special_id("<unk>") in vx.reshape(-1).tolist()  # unseen characters map to <unk>
    (xt, _), (xv, _) = split(loaded, 0.25, seed=0)
    assert torch.equal(xt, loaded.x) and torch.equal(xv, vx)  # the reader's split is kept


def test_byte_and_bpe_tokenizers_and_file_shapes(tmp_path):
    f = tmp_path / "corpus.txt"
    f.write_text(TEXT + "ünï")
    byte = load_data(_params(f, tokenizer="byte", block_size=8))
    assert byte.vocab_size == 256 and int(byte.x.max()) < 256
    bpe = load_data(_params(f, tokenizer="bpe", bpe_vocab_size=300, block_size=8))
    assert bpe.tokenizer.kind == "bpe" and bpe.vocab_size <= 300
    assert len(bpe.x) < len(byte.x)  # merges make fewer tokens than bytes
    shapes = file_shapes(_params(f, block_size=8))
    assert shapes["x_shape"] == [8] and shapes["x_dtype"] == "int64"
    assert shapes["task"] == "language_model" and shapes["vocab_size"] > 10
    info = describe(with_defaults({"source": "file", "block_size": 8, **shapes}))
    assert info.x_dtype == info.y_dtype == "int64" and info.y_shape == (8,)
    assert info.task == "language_model" and info.vocab_size == shapes["vocab_size"]
    # a changed block_size is the new T at once, before the file is read again
    later = describe(with_defaults({"source": "file", **shapes, "block_size": 32}))
    assert later.x_shape == later.y_shape == (32,)


@pytest.mark.parametrize(
    "content, params, fragments",
    [
        (b"hello \xff world", {}, ["not UTF-8", "offset 6", "0xff"]),
        (b"  \n ", {}, ["empty"]),
        (TEXT.encode(), {"block_size": 5000}, ["block_size 5000", "which has 768 tokens"]),
        (b"abcdefghij" * 10, {"block_size": 40}, ["validation part", "which has 20 tokens"]),
        (TEXT.encode(), {"tokenizer": "bpe", "bpe_vocab_size": 100}, ["bpe_vocab_size", "100"]),
        (b"tiny", {"tokenizer": "bpe", "bpe_vocab_size": 300}, ["tokenizer", "3 characters"]),
        (TEXT.encode(), {"task": "regression"}, ["language_model"]),
    ],
)
def test_text_errors_say_what_and_where(tmp_path, content, params, fragments):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    with pytest.raises(DataError) as exc:
        load_data(_params(f, **{"val_split": 0.2, **params}))
    for fragment in fragments:
        assert fragment in str(exc.value), str(exc.value)


def test_preview_shows_decoded_text_next_to_ids(tmp_path):
    f = tmp_path / "corpus.txt"
    f.write_text(TEXT)
    shown = preview(load_data(_params(f, block_size=12)), n=2)
    assert shown["task"] == "language_model" and shown["tokenizer"] == "char"
    assert "targets" not in shown and shown["vocab_size"] > 0
    first = shown["samples"][0]
    assert first["text"] == TEXT[:12] and "".join(first["tokens"]) == TEXT[:12]
    assert len(first["x"]) == len(first["y"]) == 12 and first["x"][1:] == first["y"][:-1]


def test_upload_of_a_text_file_previews_and_gives_dataset_params(client):
    from tests.server_app import AUTH
    from tests.test_server_datasets import error, upload

    r = upload(client, TEXT.encode(), "corpus.txt", tokenizer="byte", block_size="10")
    assert r.status_code == 201, r.get_json()
    made = r.get_json()
    assert made["format"] == "text"
    params = made["dataset_params"]
    assert params["task"] == "language_model" and params["x_dtype"] == "int64"
    assert params["vocab_size"] == 256 and params["x_shape"] == [10]
    assert params["tokenizer"] == "byte" and params["block_size"] == 10
    sample = made["preview"]["samples"][0]
    assert sample["text"] == TEXT[:10] and len(sample["x"]) == 10
    prev = client.get(f"/api/datasets/{made['id']}/preview", headers=AUTH)
    assert prev.get_json()["preview"]["tokenizer"] == "byte"
    bad = upload(client, b"caf\xe9 au lait", "latin1.txt")
    assert bad.status_code == 422 and "offset 3" in error(bad)["message"]
    r = upload(client, TEXT.encode(), "corpus.txt", block_size="0")
    assert r.status_code == 400 and error(r)["code"] == "bad_option"


def test_changing_a_read_option_reads_the_upload_again(client):
    """Before: the shapes stayed those of the first read until a run re-read the file, so the
    editor showed a stale vocabulary and T after the tokenizer or block_size changed."""
    from tests.server_app import AUTH
    from tests.test_server_datasets import error, upload

    made = upload(client, TEXT.encode(), "corpus.txt", tokenizer="byte", block_size="10")
    made = made.get_json()
    url = f"/api/datasets/{made['id']}/read"
    r = client.post(url, data={"tokenizer": "char", "block_size": "6"}, headers=AUTH)
    assert r.status_code == 200, r.get_json()
    params = r.get_json()["dataset_params"]
    chars = len(set(TEXT[: int(len(TEXT) * 0.8)]))  # the training part's characters + <unk>
    assert params["tokenizer"] == "char" and params["x_shape"] == [6]
    assert params["vocab_size"] == chars + 1 and params["format"] == "text"
    assert r.get_json()["preview"]["samples"][0]["text"] == TEXT[:6]
    listed = client.get(f"/api/datasets/{made['id']}", headers=AUTH).get_json()
    assert listed["dataset_params"]["vocab_size"] == chars + 1
    # a read that fails leaves the upload as it was, and says why
    bad = client.post(url, data={"block_size": str(len(TEXT))}, headers=AUTH)
    assert bad.status_code == 422 and "block_size" in error(bad)["message"]
    kept = client.get(f"/api/datasets/{made['id']}", headers=AUTH).get_json()
    assert kept["dataset_params"]["x_shape"] == [6]
    assert client.post(url, data={}, headers=AUTH).status_code == 400
    unknown = client.post(
        "/api/datasets/0123456789abcdef/read", data={"block_size": "4"}, headers=AUTH
    )
    assert unknown.status_code == 404


def test_a_run_splits_the_text_by_the_training_nodes_val_split(tmp_path):
    from server.engine.run_data import load_run_data
    from tests.helpers import chain

    (tmp_path / "corpus.txt").write_text(TEXT)
    doc = chain(
        {"source": "file", "path": "corpus.txt", "block_size": 8},
        [("Embedding", {"num_embeddings": 30, "embedding_dim": 4})],
        training={"val_split": 0.5},
    )
    raw, loaded = load_run_data(doc, {}, base_dir=tmp_path, data_root=None, data_names={})
    data = next(n for n in raw["nodes"] if n["type"] == "Dataset")["params"]
    assert data["task"] == "language_model" and data["x_shape"] == [8]
    assert data["vocab_size"] == loaded.vocab_size
    assert len(loaded.x) == (len(TEXT) // 2 - 1) // 8 == len(loaded.val[0])


def test_a_language_model_trains_on_a_text_file(tmp_path):
    # the file's shapes say num_classes None (unknown for text): the run must not take it as
    # a value for the Dataset's num_classes
    from server.engine.trainer import Trainer
    from tests.helpers import chain

    (tmp_path / "corpus.txt").write_text(TEXT)
    doc = chain(
        {"source": "file", "path": "corpus.txt", "block_size": 8},
        [
            ("Embedding", {"num_embeddings": 30, "embedding_dim": 8}),
            ("Linear", {"out_features": 30}),
        ],
        training={"val_split": 0.25, "epochs": 2, "batch_size": 8, "checkpoint_every": 0},
    )
    trainer = Trainer(doc, base_dir=tmp_path)
    result = trainer.run()
    assert result.status == "finished", result.reason
    assert trainer.loaded.task == "language_model"
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_builtin_preview_endpoint_checks_params_and_keeps_the_sample_count(client):
    import json

    from tests.server_app import AUTH
    from tests.test_server_datasets import error

    url = "/api/datasets/builtin/moons/preview?params="
    r = client.get(url + json.dumps({"samples": 5000, "noise": 0.2}), headers=AUTH)
    assert r.status_code == 200, r.get_json()
    shown = r.get_json()["preview"]
    assert shown["num_samples"] == 5000 and len(shown["samples"]) == 5
    bad = client.get(url + json.dumps({"samples": 1}), headers=AUTH)
    assert bad.status_code == 400 and error(bad)["message"].startswith("samples:")
    missing = client.get("/api/datasets/builtin/nope/preview", headers=AUTH)
    assert missing.status_code == 404
    listed = client.get("/api/datasets", headers=AUTH).get_json()["builtin"]
    assert {d["x_dtype"] for d in listed} >= {"float32"}


def test_a_builtin_token_source_previews_decoded_text(client):
    from tests.server_app import AUTH

    listed = client.get("/api/datasets", headers=AUTH).get_json()["builtin"]
    reviews = next(d for d in listed if d["name"] == "reviews")
    assert reviews["x_dtype"] == "int64" and reviews["vocab_size"] == 25
    r = client.get("/api/datasets/builtin/reviews/preview", headers=AUTH)
    shown = r.get_json()["preview"]
    assert shown["pad_id"] == 0 and shown["tokenizer"] == "char"
    sample = shown["samples"][0]
    assert sample["text"] == "".join(t for t in sample["tokens"] if t != "<pad>")
    assert sample["label"] in ("negative", "positive")


def test_language_model_task_on_a_table_is_refused(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,0\n2,1\n")
    with pytest.raises(DataError, match="task language_model reads a text file"):
        load_data(_params(f, task="language_model"))
