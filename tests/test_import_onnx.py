"""`torchloom import-onnx`: models exported by torchloom (server/exports/onnx_export.py)
re-import to equivalent graphs with the same outputs; unsupported ops are listed; external data
is never read from outside the model's folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import load_file

from graph_compiler import analyze, compile_graph
from graph_compiler.cli import main
from tests.run_folders import fabricated_run
from tests.server_app import AUTH, make_app

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FIGURES: dict[str, dict] = {}


def run_cli(*argv: str) -> int:
    return main(["import-onnx", *argv])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("onnx-import"))


def exported(
    app, example: str, run_id: str, tmp: Path, document: dict | None = None
) -> tuple[Path, torch.nn.Module, Any]:
    """A finished run of the example (seeded weights, perturbed batch-norm statistics) exported
    to ONNX through the server: (model.onnx, the torch model, the data's DataInfo)."""

    def perturb(model: torch.nn.Module) -> None:
        generator = torch.Generator().manual_seed(1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)
                m.weight.data.uniform_(0.5, 1.5, generator=generator)

    if document is None:
        document = json.loads((EXAMPLES / f"{example}.json").read_text())
    _, compiled, model = fabricated_run(app, run_id, document, adjust=perturb)
    r = app.test_client().get(f"/api/runs/{run_id}/export/model.onnx", headers=AUTH)
    assert r.status_code == 200, r.get_json(silent=True)
    path = tmp / f"{example}.onnx"
    path.write_bytes(r.data)
    return path, model.eval(), compiled.analysis.data


def sample_batch(data, rows: int = 6) -> torch.Tensor:
    """Inputs for the example's data: floats, or token ids padded at the end of each row (the
    pad id 0, as a tokenized text column is) with lengths from 1 to T."""
    generator = torch.Generator().manual_seed(2)
    shape = tuple(data.x_shape)
    if data.x_dtype != "int64":
        return torch.randn(rows, *shape, generator=generator)
    ids = torch.randint(1, data.vocab_size, (rows, *shape), generator=generator)
    if len(shape) == 1:
        lengths = torch.linspace(1, shape[0], rows).long()
        ids[torch.arange(shape[0]) >= lengths[:, None]] = 0
    return ids


REIMPORTED = [
    ("digits_mlp", "00000000000000b1"),
    ("digits_cnn", "00000000000000b2"),
    ("residual_cnn", "00000000000000b3"),
    ("diabetes_regression", "00000000000000b4"),
    ("digits_autoencoder", "00000000000000b6"),
    ("multitask_digits", "00000000000000b7"),
    ("gru_sequences", "00000000000000b8"),
    ("transformer_classifier", "00000000000000b9"),
    ("text_classifier", "00000000000000ba"),
    ("unet_segmentation", "00000000000000bc"),
    ("vit_tiny", "00000000000000bd"),
    ("gpt_mini", "00000000000000be"),
]


def test_every_example_is_reimported():
    names = [r.values[0] if hasattr(r, "values") else r[0] for r in REIMPORTED]
    assert sorted(names) == sorted(p.stem for p in EXAMPLES.glob("*.json"))


@pytest.mark.parametrize(("example", "run_id"), REIMPORTED)
def test_torchloom_exports_reimport_with_the_same_outputs(app, example, run_id, tmp_path, capsys):
    path, original, data = exported(app, example, run_id, tmp_path)
    out = tmp_path / "graph.json"
    assert run_cli(str(path), "-o", str(out)) == 0, capsys.readouterr().err
    document = json.loads(out.read_text())
    model_only = not any(n["type"] == "Training" for n in document["nodes"])
    analysis = analyze(document, model_only=True) if model_only else analyze(document)
    assert analysis.ok, analysis.error_list
    rebuilt = compile_graph(analysis).instantiate()
    rebuilt.load_state_dict(load_file(str(tmp_path / "graph.safetensors")))
    rebuilt.eval()

    x = sample_batch(data)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runtime = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        got, expected = _listed(rebuilt(x)), _listed(original(x))
    assert len(got) == len(expected) == len(runtime)
    diff_torch = max(float((a - b).abs().max()) for a, b in zip(got, expected, strict=True))
    diff_runtime = max(
        float(np.abs(a.numpy() - b).max()) for a, b in zip(got, runtime, strict=True)
    )
    assert diff_torch <= 1e-5 and diff_runtime <= 1e-5, (diff_torch, diff_runtime)
    count = sum(p.numel() for p in rebuilt.parameters())  # a tied tensor counts once
    assert count == sum(p.numel() for p in original.parameters())
    assert _shared(rebuilt) == _shared(original)  # gpt_mini's head tied to its table again

    # equivalent: the same convolutions, linear layers and batch norms, in order (write_onnx
    # keeps eval-mode batch norms: server/exports/onnx_optimize.py), running statistics too
    def layers(model):
        kinds = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.RNNBase)
        found = [
            (type(m).__name__, tuple(_first_weight(m).shape))
            for m in model.modules()
            if isinstance(m, (*kinds, torch.nn.BatchNorm2d))
        ]
        stats = [(tuple(b.shape), round(float(b.sum()), 4)) for b in model.buffers()]
        return found, [s for s in stats if s[0] != ()]  # not num_batches_tracked

    assert layers(rebuilt) == layers(original)
    FIGURES[example] = {
        "params": count,
        "max_abs_diff_vs_torch": diff_torch,
        "max_abs_diff_vs_onnxruntime": diff_runtime,
    }


def _shared(model: torch.nn.Module) -> int:
    """How many parameter names are a second name for a tensor (weight tying)."""
    named = model.named_parameters(remove_duplicate=False)
    return sum(1 for _ in named) - sum(1 for _ in model.parameters())


def _first_weight(module: torch.nn.Module) -> torch.Tensor:
    """A layer's weight; a recurrent layer's input-to-hidden weight of its first layer."""
    return module.weight_ih_l0 if isinstance(module, torch.nn.RNNBase) else module.weight


def _listed(outputs) -> list[torch.Tensor]:
    """A model's outputs in order: one tensor, a tuple, or a dict keyed by output node."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return list(outputs.values() if isinstance(outputs, dict) else outputs)


def _compare_with_runtime(path: Path, tmp_path: Path, x: np.ndarray) -> tuple[list, float]:
    out = tmp_path / "graph.json"
    assert run_cli(str(path), "-o", str(out)) == 0
    document = json.loads(out.read_text())
    rebuilt = compile_graph(document).instantiate()
    rebuilt.load_state_dict(load_file(str(tmp_path / "graph.safetensors")))
    rebuilt.eval()
    (expected,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    with torch.no_grad():
        got = rebuilt(torch.from_numpy(x)).numpy()
    assert got.shape == expected.shape
    return [n["type"] for n in document["nodes"]], float(np.abs(got - expected).max())


def test_normalization_merges_and_matmul_bias(tmp_path, capsys):
    """BatchNormalization, Relu, Mul, Concat, Transpose, GlobalAveragePool, Flatten and
    MatMul + Add (one Linear), written by hand."""
    rng = np.random.default_rng(0)

    def const(name, *shape, low=-1.0, high=1.0):
        return numpy_helper.from_array(rng.uniform(low, high, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["a"], epsilon=1e-3),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Mul", ["a", "r"], ["p"]),
        helper.make_node("Concat", ["r", "p"], ["c"], axis=1),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("GlobalAveragePool", ["t"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "w"], ["h"]),
        helper.make_node("Add", ["h", "bias"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "handmade",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [
            const("s", 2, low=0.5, high=1.5),
            const("b", 2),
            const("m", 2),
            const("v", 2, low=0.5, high=1.5),
            const("w", 4, 3),
            const("bias", 3),
        ],
    )
    path = tmp_path / "handmade.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = rng.standard_normal((5, 2, 4, 5)).astype(np.float32)
    types, diff = _compare_with_runtime(path, tmp_path, x)
    assert diff <= 1e-5, diff
    model_types = types[1 : types.index("CrossEntropyLoss")]
    assert model_types == [
        "BatchNorm2d", "ReLU", "Multiply", "Concat", "Transpose", "AdaptiveAvgPool2d",
        "Flatten", "Linear",
    ]  # fmt: skip


def test_torch_export_with_layer_norm_and_activations(tmp_path):
    """Conv, LeakyRelu, AveragePool, Reshape, Gemm, Gelu, LayerNormalization, LogSoftmax as
    torch.onnx writes them."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.pool = torch.nn.AvgPool2d(2)
            self.fc = torch.nn.Linear(8 * 4 * 4, 16)
            self.norm = torch.nn.LayerNorm(16)
            self.out = torch.nn.Linear(16, 5)

        def forward(self, x):
            x = self.pool(torch.nn.functional.leaky_relu(self.conv(x), 0.2))
            h = self.norm(torch.nn.functional.gelu(self.fc(torch.flatten(x, 1))))
            return torch.log_softmax(self.out(h), dim=1)

    x = torch.randn(4, 3, 16, 16)
    program = torch.export.export(
        Net().eval(), (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), strict=False
    )
    path = tmp_path / "net.onnx"
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)
    types, diff = _compare_with_runtime(path, tmp_path, x.numpy())
    assert diff <= 1e-5, diff
    assert {"LayerNorm", "GELU", "LeakyReLU", "AvgPool2d", "LogSoftmax"} <= set(types)


class Recurrent(torch.nn.Module):
    """ConvTranspose2d, ReLU6, Hardtanh, then the image as a sequence through a 2-layer LSTM, a
    bidirectional GRU (torch's exporter unrolls nn.RNN into MatMuls: no RNN op to test here); Slice,
    Squeeze / Unsqueeze, Gather (the last step), Softmax; x * x (one tensor twice into a node)."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(3, 4, 2, stride=2)
        self.clip = torch.nn.Hardtanh(-0.5, 0.75)
        self.lstm = torch.nn.LSTM(4, 6, num_layers=2, batch_first=True)
        self.gru = torch.nn.GRU(6, 5, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(10, 3)

    def forward(self, x):
        h = self.clip(self.up(x))
        seq = h.flatten(2).transpose(1, 2)[:, 2:]  # (B, 60, 4)
        seq = self.lstm(seq)[0]
        seq = self.gru(torch.nn.functional.relu6(seq * seq))[0].unsqueeze(1).squeeze(1)
        return torch.softmax(torch.nn.functional.relu6(self.head(seq[:, -1])), dim=-1)


def test_torch_export_with_recurrent_layers_and_new_ops(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 4, 4)
    program = torch.export.export(
        Recurrent().eval(), (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        strict=False,
    )  # fmt: skip
    path = tmp_path / "recurrent.onnx"
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)
    types, diff = _compare_with_runtime(path, tmp_path, x.numpy())
    assert diff <= 1e-5, diff
    assert {"ConvTranspose2d", "ReLU6", "Hardtanh", "LSTM", "GRU", "Slice"} <= set(types)
    weights = load_file(str(tmp_path / "graph.safetensors"))
    assert sum(t.numel() for t in weights.values()) == sum(
        p.numel() for p in Recurrent().parameters()
    )


@pytest.mark.parametrize(("norm_first", "activation"), [(False, "relu"), (True, "gelu")])
def test_torch_transformer_encoder_becomes_encoder_layers(tmp_path, norm_first, activation):
    """nn.TransformerEncoder as torch's exporter decomposes it: one TransformerEncoderLayer node
    per layer, proved equal to the exported ops before it is used."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(
        16, 2, 24, 0.1, activation, batch_first=True, norm_first=norm_first
    )
    encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.encoder, self.head = (
                torch.nn.Linear(3, 16),
                encoder,
                torch.nn.Linear(16, 4),
            )

        def forward(self, x):
            return self.head(self.encoder(self.embed(x)).mean(dim=1))

    model = Net().eval()
    x = torch.randn(4, 5, 3)
    program = torch.export.export(
        model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), strict=False
    )
    path = tmp_path / "encoder.onnx"
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)
    _, diff = _compare_with_runtime(path, tmp_path, x.numpy())
    assert diff <= 1e-5, diff
    nodes = json.loads((tmp_path / "graph.json").read_text())["nodes"]
    layers = [n for n in nodes if n["type"] == "TransformerEncoderLayer"]
    assert len(layers) == 2
    assert layers[0]["params"]["nhead"] == 2 and layers[0]["params"]["dim_feedforward"] == 24
    assert layers[0]["params"].get("norm_first", False) is norm_first
    assert layers[0]["params"].get("activation", "relu") == activation
    weights = load_file(str(tmp_path / "graph.safetensors"))
    assert sum(t.numel() for t in weights.values()) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("activation", ["Relu", "Tanh"])
def test_handmade_rnn_over_a_gathered_range(tmp_path, activation):
    """Range (folded to a constant) → Gather of consecutive steps (a Slice), then a time-major
    ONNX RNN op (torch's exporter never writes one: it unrolls nn.RNN), Squeeze, Gather."""
    rng = np.random.default_rng(0)

    def const(name, *shape):
        return numpy_helper.from_array(rng.uniform(-0.5, 0.5, shape).astype(np.float32), name)

    scalars = [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in (
        ("one", 1), ("five", 5), ("last", -1))]  # fmt: skip
    nodes = [
        helper.make_node("Range", ["one", "five", "one"], ["steps"]),
        helper.make_node("Gather", ["x", "steps"], ["g"], axis=1),
        helper.make_node("Transpose", ["g"], ["t"], perm=[1, 0, 2]),
        helper.make_node(
            "RNN", ["t", "w", "r", "b"], ["y"], hidden_size=6, activations=[activation]
        ),
        helper.make_node("Squeeze", ["y", "axis1"], ["s"]),
        helper.make_node("Transpose", ["s"], ["bt"], perm=[1, 0, 2]),
        helper.make_node("Gather", ["bt", "last"], ["out"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "rnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 6])],
        [
            *scalars,
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            const("w", 1, 6, 3),
            const("r", 1, 6, 6),
            const("b", 1, 12),
        ],
    )
    path = tmp_path / "rnn.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    types, diff = _compare_with_runtime(path, tmp_path, x)
    assert diff <= 1e-5, diff
    assert types[1:4] == ["Slice", "RNN", "Select"], types
    document = json.loads((tmp_path / "graph.json").read_text())
    rnn = next(n for n in document["nodes"] if n["type"] == "RNN")
    assert rnn["params"].get("nonlinearity", "tanh") == activation.lower()


def test_gather_from_a_constant_table_is_an_embedding(tmp_path):
    """Gather(table, token ids) → Embedding with the table as its weight. (The graph cannot
    validate yet: a torchloom Dataset gives float inputs only, issue 13's token sources.)"""
    from graph_compiler.importers.onnx_model import import_onnx

    table = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "x"], ["e"], axis=0),
            helper.make_node("ReduceMean", ["e", "axis"], ["y"], keepdims=0),
        ],
        "embedding",
        [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
        ],
    )
    path = tmp_path / "embedding.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    imported, state = import_onnx(path)
    assert [(n.type, n.params) for n in imported.nodes] == [
        ("Embedding", {"num_embeddings": 10, "embedding_dim": 4}),
        ("Mean", {"dim": [1]}),
    ]
    assert torch.equal(state["e.weight"], torch.from_numpy(table))


def test_unsupported_ops_are_listed(tmp_path, capsys):
    """Every unsupported op at once, each with the node where it was found."""
    nodes = [
        helper.make_node("Cos", ["x"], ["c"], name="cosine"),
        helper.make_node("Tile", ["c", "reps"], ["t"], name="tiled"),
        helper.make_node("Gather", ["t", "i"], ["y"], axis=0, name="rows"),
    ]
    graph = helper.make_graph(
        nodes,
        "unsupported",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("i", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
        [numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "reps")],
    )
    path = tmp_path / "unsupported.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert run_cli(str(path), "-o", str(tmp_path / "g.json")) == 1
    err = capsys.readouterr().err
    assert "has 2 inputs" in err  # the index input is refused first, clearly
    graph.input.pop()
    graph.initializer.append(numpy_helper.from_array(np.array([0, 1], dtype=np.int64), "i"))
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert run_cli(str(path), "-o", str(tmp_path / "g.json")) == 1
    err = capsys.readouterr().err
    assert "uses ops that import-onnx does not support" in err
    assert "Cos (1 node, e.g. cosine: no catalog node)" in err
    assert "Tile (1 node, e.g. tiled: no catalog node)" in err
    assert "Traceback" not in err and not (tmp_path / "g.json").exists()


def tiny_model(tmp_path: Path, location: str | None) -> Path:
    """x (N, 4) → Gemm with a 3×4 weight; the weight stored as external data at `location`."""
    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    bias = numpy_helper.from_array(np.ones(3, dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1, name="fc")],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "tiny.onnx"
    if location is None:
        onnx.save_model(model, str(path))
        return path
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    if location != "weights.bin":  # point the model elsewhere
        (tmp_path / "secret.bin").write_bytes((folder / "weights.bin").read_bytes())
        proto = onnx.load(str(path), load_external_data=False)
        for tensor in proto.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save_model(proto, str(path))
    return path


def test_external_data_inside_the_folder_is_read(tmp_path, capsys):
    path = tiny_model(tmp_path, "weights.bin")
    assert run_cli(str(path), "-o", str(tmp_path / "g.json")) == 0, capsys.readouterr().err
    weights = load_file(str(tmp_path / "g.safetensors"))
    assert torch.equal(weights["fc.weight"], torch.arange(12.0).reshape(3, 4))
    assert torch.equal(weights["fc.bias"], torch.ones(3))


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/hostname"])
def test_external_data_outside_the_folder_is_refused(tmp_path, capsys, location):
    path = tiny_model(tmp_path, location)
    assert run_cli(str(path), "-o", str(tmp_path / "g.json")) == 1
    err = capsys.readouterr().err
    assert "outside the model's folder" in err and "refusing" in err


def test_unreadable_files_are_clear(tmp_path, capsys):
    assert run_cli(str(tmp_path / "none.onnx"), "-o", str(tmp_path / "g.json")) == 1
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    assert run_cli(str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "g.json")) == 1
    err = capsys.readouterr().err
    assert "bad.onnx" in err and "Traceback" not in err
