"""A CSV text column → padded int64 token ids for classification: pad id 0, max_length, the
validation file read with the training tokenizer, errors naming rows and params."""

from __future__ import annotations

import pytest
import torch

from graph_compiler import analyze
from graph_compiler.datasets import describe
from server.engine.data import DataError, file_shapes, load_data, preview, with_defaults
from tests.helpers import chain

CSV = (
    "id,review,stars,label\n"
    '1,"good film",5,pos\n'
    '2,"not good, not at all",1,neg\n'
    "3,fine,4,pos\n"
    '4,"bad ending",2,neg\n'
)


def _params(path, **kw):
    return {"source": "file", "path": str(path), "text_column": "review", **kw}


def test_text_column_is_tokenized_and_padded(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text(CSV)
    loaded = load_data(_params(f))
    tok = loaded.tokenizer
    assert tok.pad_id == 0 and loaded.x.dtype == torch.int64
    assert loaded.x.shape == (4, len("not good, not at all"))
    assert tok.decode(loaded.x[0].tolist()) == "good film"
    assert loaded.x[2, 4:].eq(0).all() and loaded.x[2, :4].ne(0).all()
    assert loaded.class_names == ["neg", "pos"] and loaded.y.tolist() == [1, 0, 1, 0]
    cut = load_data(_params(f, max_length=6))
    assert cut.x.shape == (4, 6) and "3 rows cut to 6" in cut.description
    shapes = file_shapes(_params(f, tokenizer="byte"))
    assert shapes["pad_id"] == 0 and shapes["vocab_size"] == 257 and shapes["x_dtype"] == "int64"
    info = describe(with_defaults({"source": "file", **shapes}))
    assert info.pad_id == 0 and info.vocab_size == 257 and info.task == "classification"
    doc = chain(
        {"source": "file", "path": str(f), **shapes},
        [
            ("Embedding", {"num_embeddings": 257, "embedding_dim": 8, "padding_idx": 0}),
            "Flatten",
            ("Linear", {"out_features": 2}),
        ],
    )
    assert analyze(doc).ok


def test_validation_file_uses_the_training_tokenizer_and_length(tmp_path):
    (tmp_path / "train.csv").write_text(CSV)
    (tmp_path / "val.csv").write_text(
        "id,review,stars,label\n5,good good good good good good good good,5,pos\n6,zzz,1,neg\n"
    )
    loaded = load_data(_params(tmp_path / "train.csv", val_path=str(tmp_path / "val.csv")))
    vx, vy = loaded.val
    assert vx.shape[1] == loaded.x.shape[1] and vy.tolist() == [1, 0]
    unk = loaded.tokenizer.special_id("<unk>")
    assert vx[1, :3].tolist() == [unk] * 3
    shown = preview(loaded, n=1)
    assert shown["pad_id"] == 0 and shown["samples"][0]["text"] == "good film"
    assert shown["samples"][0]["tokens"][-1] == "<pad>"


@pytest.mark.parametrize(
    "params, fragments",
    [
        ({"text_column": "body"}, ["no column named 'body'", "text_column", "'review'"]),
        ({"target_column": "review"}, ["both 'review'"]),
        ({"task": "regression"}, ["classification"]),
        ({"tokenizer": "bpe", "bpe_vocab_size": 10}, ["bpe_vocab_size"]),
    ],
)
def test_text_csv_errors(tmp_path, params, fragments):
    f = tmp_path / "reviews.csv"
    f.write_text(CSV)
    with pytest.raises(DataError) as exc:
        load_data(_params(f, **params))
    for fragment in fragments:
        assert fragment in str(exc.value), str(exc.value)


def test_missing_label_names_the_row(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text('text,label\n"a b",x\n"c d",\n"e",y\n')
    with pytest.raises(DataError, match=r"row 3: the label 'label' is missing"):
        load_data({"source": "file", "path": str(f), "text_column": "text"})


def test_the_shipped_reviews_source_matches_its_table_entry():
    """The built-in "reviews" is read through the CSV text path; what the compiler is told
    without loading (T, vocabulary, pad id, samples) is what loading gives."""
    loaded = load_data({"source": "reviews"})
    info = describe(with_defaults({"source": "reviews"}))
    assert loaded.x.shape == (info.samples, *info.x_shape) and loaded.x.dtype == torch.int64
    assert loaded.vocab_size == info.vocab_size and loaded.tokenizer.pad_id == info.pad_id
    assert loaded.num_classes == info.num_classes == 2
    assert loaded.class_names == ["negative", "positive"]
    assert preview(loaded, n=1)["samples"][0]["text"].startswith("the ")


def test_the_reviews_generator_is_deterministic(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_reviews", root / "scripts/make_reviews.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    monkeypatch.setattr(make, "OUT", tmp_path / "reviews.csv")
    make.main()
    shipped = root / "server/engine/data/shipped/reviews.csv"
    assert (tmp_path / "reviews.csv").read_bytes() == shipped.read_bytes()


def test_upload_with_a_text_column_gives_token_params(client):
    from tests.test_server_datasets import upload

    r = upload(client, CSV.encode(), "reviews.csv", text_column="review", max_length="8")
    assert r.status_code == 201, r.get_json()
    params = r.get_json()["dataset_params"]
    assert params["text_column"] == "review" and params["max_length"] == 8
    assert params["x_dtype"] == "int64" and params["pad_id"] == 0 and params["x_shape"] == [8]
    assert r.get_json()["preview"]["samples"][0]["text"] == "good fil"


def test_the_tokenizer_learns_from_the_training_rows_only(tmp_path):
    """Characters that only validation rows hold are <unk> to the model, as they would be for
    text it meets after training; with a validation file every row trains."""
    from server.engine.data.split import split_order

    n, val_split, seed = 20, 0.25, 3
    train, val = split_order(n, val_split, seed)
    rows = ["ab ba" for _ in range(n)]
    rows[int(val[0])], rows[int(train[0])] = "zzz", "qq"
    labels = [("pos", "neg")[i % 2] for i in range(n)]
    f = tmp_path / "t.csv"
    f.write_text("text,label\n" + "".join(f"{r},{y}\n" for r, y in zip(rows, labels, strict=True)))
    loaded = load_data(_params(f, text_column="text", val_split=val_split, split_seed=seed))
    chars = set(loaded.tokenizer.chars)
    assert "q" in chars and "z" not in chars
    unk = loaded.tokenizer.special_id("<unk>")
    assert loaded.x[int(val[0]), :3].tolist() == [unk] * 3
    f2 = tmp_path / "v.csv"
    f2.write_text("text,label\nxy,pos\nyx,neg\n")
    with_file = load_data(
        _params(f, text_column="text", val_split=val_split, split_seed=seed, val_path=str(f2))
    )
    assert "z" in set(with_file.tokenizer.chars)
