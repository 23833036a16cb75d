"""import-onnx of padded token batches: torchloom's export of PaddingMask + MaskedPool in each
mode (the text_classifier example pools "last"; test_import_onnx.py re-imports it) comes back
as those two nodes with the same outputs; an Equal that is no padding mask is refused clearly."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import load_file

from graph_compiler import compile_graph
from tests.server_app import make_app
from tests.test_import_onnx import EXAMPLES, exported, run_cli, sample_batch

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("onnx-masks"))


@pytest.mark.parametrize(
    ("mode", "run_id"), [("mean", "00000000000000e1"), ("max", "00000000000000e2")]
)
def test_masked_pool_modes_reimport(app, tmp_path, capsys, mode, run_id):
    document = json.loads((EXAMPLES / "text_classifier.json").read_text())
    pool = next(n for n in document["nodes"] if n["type"] == "MaskedPool")
    pool["params"]["mode"] = mode
    path, original, data = exported(app, f"text_{mode}", run_id, tmp_path, document)
    out = tmp_path / "graph.json"
    assert run_cli(str(path), "-o", str(out)) == 0, capsys.readouterr().err
    imported = json.loads(out.read_text())
    by_type = {n["type"]: n for n in imported["nodes"]}
    assert by_type["MaskedPool"]["params"].get("mode", "mean") == mode
    assert by_type["PaddingMask"]["params"].get("pad_id", 0) == 0
    assert by_type["Dataset"]["params"]["x_dtype"] == "int64"
    rebuilt = compile_graph(imported).instantiate()
    rebuilt.load_state_dict(load_file(str(tmp_path / "graph.safetensors")))
    rebuilt.eval()
    x = sample_batch(data)
    assert bool((x == 0).any())  # padded rows: the mask matters
    (runtime,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()}
    )
    with torch.no_grad():
        got, expected = rebuilt(x), original(x)
    assert float((got - expected).abs().max()) <= 1e-5
    assert float(np.abs(got.numpy() - runtime).max()) <= 1e-5
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(
        p.numel() for p in original.parameters()
    )


def test_an_equal_that_is_no_padding_mask_is_listed(tmp_path, capsys):
    """Equal of a tensor with itself shifted: no catalog node, named in the error."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "one"], ["shifted"]),
            helper.make_node("Equal", ["x", "shifted"], ["same"], name="compare"),
            helper.make_node("Cast", ["same"], ["y"], to=TensorProto.FLOAT),
        ],
        "equal",
        [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        [numpy_helper.from_array(np.array([1] * 5, dtype=np.int64), "one")],
    )
    path = tmp_path / "equal.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    assert run_cli(str(path), "-o", str(tmp_path / "g.json")) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and not (tmp_path / "g.json").exists()
    assert "Equal (1 node, e.g. compare: an Equal other than of token ids and one constant" in err
