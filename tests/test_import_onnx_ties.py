"""import-onnx ties a Linear to an Embedding again when its weight is the table (the same
initializer, or the exporter's folded transpose of it), and only then."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graph_compiler.importers.onnx_model import import_onnx

TABLE = np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)


def lm_head(tmp_path, head: np.ndarray | None):
    """Gather(table, ids) → MatMul(·, head (D, V)): an embedding and a vocabulary head; without
    `head`, the head is the table itself, transposed in the graph."""
    shared = head is None
    inits = [numpy_helper.from_array(TABLE, "table")]
    if shared:
        nodes = [helper.make_node("Transpose", ["table"], ["head"], perm=[1, 0])]
    else:
        nodes, inits = [], [*inits, numpy_helper.from_array(head, "head")]
    nodes += [
        helper.make_node("Gather", ["table", "x"], ["e"], axis=0),
        helper.make_node("MatMul", ["e", "head"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "lm",
        [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5, 9])],
        inits,
    )
    path = tmp_path / "lm.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


@pytest.mark.parametrize("head", [None, TABLE.T.copy()], ids=["shared", "folded copy"])
def test_a_head_holding_the_table_is_tied(tmp_path, head):
    graph, _ = import_onnx(lm_head(tmp_path, head))
    head = next(n for n in graph.nodes if n.type == "Linear")
    embedding = next(n for n in graph.nodes if n.type == "Embedding")
    assert head.params["tie_weight"] == embedding.id


def test_a_head_with_other_values_is_not_tied(tmp_path):
    graph, _ = import_onnx(lm_head(tmp_path, TABLE.T + np.float32(1e-3)))
    head = next(n for n in graph.nodes if n.type == "Linear")
    assert "tie_weight" not in head.params
