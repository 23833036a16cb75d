"""Token ids against Embeddings: at validation (the data's vocab_size against num_embeddings,
the pad id against padding_idx) and at run time (the ids themselves, once at load)."""

from __future__ import annotations

import pytest
import torch

from graph_compiler import analyze
from server.engine.run_document import RunFailed
from server.engine.token_range import check_token_ids, embeddings_on_data
from tests.helpers import chain


def _ids(vocab=None, pad=None):
    data = {"source": "file", "path": "ids.npz", "x_shape": [6], "x_dtype": "int64"}
    data.update({k: v for k, v in (("vocab_size", vocab), ("pad_id", pad)) if v is not None})
    return data


def _doc(data, rows=20, padding_idx=None):
    emb = {"num_embeddings": rows, "embedding_dim": 4, "padding_idx": padding_idx}
    return chain(data, [("emb", "Embedding", emb), "Flatten", ("Linear", {"out_features": 3})])


def test_a_vocabulary_that_fits_and_the_right_padding_idx_validate_cleanly():
    a = analyze(_doc(_ids(vocab=20, pad=0), rows=20, padding_idx=0))
    assert a.ok and a.errors == [], [str(e) for e in a.errors]


def test_vocab_larger_than_the_table_is_an_error_on_num_embeddings():
    a = analyze(_doc(_ids(vocab=21), rows=20))
    (err,) = a.error_list
    assert (err.code, err.node, err.field) == ("vocab_out_of_range", "emb", "num_embeddings")
    assert "21" in err.message and "20" in err.message


def test_run_time_ids_out_of_range_name_the_split_batch_and_id():
    a = analyze(_doc(_ids(), rows=20))  # no declared vocabulary: validation cannot know
    assert a.ok, a.errors
    assert embeddings_on_data(a) == [("emb", 20)]
    fine = torch.randint(0, 20, (10, 6))
    check_token_ids(a, {"training": fine, "validation": fine}, batch_size=4)
    bad = fine.clone()
    bad[9, 2] = 25
    with pytest.raises(RunFailed) as exc:
        check_token_ids(a, {"training": fine, "validation": bad}, batch_size=4)
    assert exc.value.code == "data_error"
    message = str(exc.value)
    for part in ("validation split's batch 2", "sample 9", "token id 25", "num_embeddings 20"):
        assert part in message, message
