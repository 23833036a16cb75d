"""Integer NPY/NPZ/safetensors x are token ids: they stay int64 (never normalized), file_shapes
reports the dtype and vocabulary, and the compiler sees a `B×T int64` edge an Embedding takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graph_compiler import analyze
from graph_compiler.datasets import describe
from server.engine.data import DataError, Normalizer, file_shapes, load_data, with_defaults
from tests.helpers import chain


def _npz(tmp_path, x, y, name="ids.npz"):
    path = tmp_path / name
    np.savez(path, x=x, y=y)
    return path


def test_integer_npz_keeps_ids_and_reports_vocab(tmp_path):
    x = np.arange(40, dtype=np.int32).reshape(5, 8) % 13
    path = _npz(tmp_path, x, np.array([0, 1, 0, 1, 1]))
    loaded = load_data({"source": "file", "path": str(path)})
    assert loaded.x.dtype == torch.int64 and loaded.x.tolist() == x.tolist()
    assert loaded.vocab_size == 13
    assert Normalizer.fit(loaded.x).kind == "none"
    shapes = file_shapes({"source": "file", "path": str(path)})
    assert shapes["x_dtype"] == "int64" and shapes["vocab_size"] == 13
    assert shapes["x_shape"] == [8]
    info = describe(with_defaults({"source": "file", **shapes}))
    assert info.x_dtype == "int64" and info.vocab_size == 13


def test_uint8_pixels_stay_float_features(tmp_path):
    path = _npz(tmp_path, np.full((4, 3), 200, dtype=np.uint8), np.array([0, 1, 0, 1]))
    loaded = load_data({"source": "file", "path": str(path)})
    assert loaded.x.dtype == torch.float32 and loaded.vocab_size is None
    assert file_shapes({"source": "file", "path": str(path)})["x_dtype"] == "float32"


def test_declared_vocab_size_and_its_errors(tmp_path):
    path = _npz(tmp_path, np.array([[1, 2], [3, 9]], dtype=np.int64), np.array([0, 1]))
    p = {"source": "file", "path": str(path)}
    assert load_data({**p, "vocab_size": 50}).vocab_size == 50
    with pytest.raises(DataError, match=r"token id 9 but vocab_size is 5.*at least 10"):
        load_data({**p, "vocab_size": 5})
    neg = _npz(tmp_path, np.array([[1, -2]], dtype=np.int64), np.array([0]), "neg.npz")
    with pytest.raises(DataError, match=r"x\[0\] holds the negative id -2"):
        load_data({"source": "file", "path": str(neg)})


def test_safetensors_and_npy_ids(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "ids.safetensors"
    save_file({"x": np.array([[4, 5, 6], [1, 2, 3]], dtype=np.int64), "y": np.array([0, 1])}, path)
    loaded = load_data({"source": "file", "path": str(path)})
    assert loaded.x.dtype == torch.int64 and loaded.vocab_size == 7
    npy = tmp_path / "table.npy"
    np.save(npy, np.array([[3, 4, 0], [5, 6, 1]], dtype=np.int64))
    loaded = load_data({"source": "file", "path": str(npy)})
    assert loaded.x.tolist() == [[3, 4], [5, 6]] and loaded.vocab_size == 7


def test_the_edge_reads_int64_and_an_embedding_takes_it(tmp_path):
    path = _npz(tmp_path, np.arange(60, dtype=np.int64).reshape(6, 10) % 20, np.arange(6) % 2)
    data = {
        "source": "file",
        "path": str(path),
        **file_shapes({"source": "file", "path": str(path)}),
    }
    doc = chain(
        data,
        [
            ("Embedding", {"num_embeddings": 20, "embedding_dim": 4}),
            "Flatten",
            ("Linear", {"out_features": 2}),
        ],
    )
    result = analyze(doc)
    assert result.ok, result.errors
    x = result.result("data").outputs["x"]
    assert x.dtype == "int64" and tuple(x.shape[1:]) == (10,) and result.data.vocab_size == 20
