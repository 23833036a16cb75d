"""`torchloom import-module`: reference architectures (tests/import_models.py) round-trip —
import, compile, identical parameter counts and identical outputs with the same weights; what
has no catalog node stays opaque and says so; what cannot be imported fails with a clear
message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from graph_compiler import analyze, compile_graph
from graph_compiler.cli import main
from graph_compiler.importers import import_module
from graph_compiler.importers.commands import OPAQUE_EXIT
from graph_compiler.importers.graph import to_document
from graph_compiler.importers.module_inputs import example, parse_inputs
from graph_compiler.importers.torch_module import ExampleInput
from tests import import_models

MODELS = Path(import_models.__file__)
CASES = {  # class → (--input-shape, constructor args)
    "LeNet5": ("3,1,28,28", None),
    "ResNet18": ("2,3,32,32", None),
    "TransformerClassifier": ("3,7,12", {"num_classes": 4}),
    "SequenceModel": ("2,5,6", None),
    "MobileGates": ("2,3,8,8", None),
    "WithParameter": ("3,8", None),
    "TokensAndPositions": ("3,5,6", None),
    "CausalAttention": ("2,6,8", None),
    "ViTTiny": ("2,3,16,16", None),
    "CausalEncoder": ("2,6,16", None),
    "LSTMTextClassifier": ("3,20:int64", None),
    "ScalarArithmetic": ("3,8", None),
}
FIGURES: dict[str, dict] = {}


def run_cli(*argv: str) -> int:
    return main(["import-module", *argv])


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_models_round_trip(name, tmp_path, capsys):
    spec, args = CASES[name]
    torch.manual_seed(0)
    original = getattr(import_models, name)(**(args or {}))
    for m in original.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    original.eval()
    weights = tmp_path / "original.pt"
    torch.save(original.state_dict(), weights)

    argv = [f"{MODELS}:{name}", "--input-shape", spec]
    argv += ["--weights", str(weights), "-o", str(tmp_path / "graph.json")]
    if args:
        argv += ["--args", json.dumps(args)]
    assert run_cli(*argv) == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out

    document = json.loads((tmp_path / "graph.json").read_text())
    analysis = analyze(document)
    assert analysis.ok, analysis.error_list
    assert not any(n["type"] == "CustomLayer" for n in document["nodes"])
    positions = [tuple(n["position"]) for n in document["nodes"]]
    assert len(set(positions)) == len(positions)  # laid out: no two nodes on one spot
    compiled = compile_graph(analysis)
    rebuilt = compiled.instantiate()
    rebuilt.load_state_dict(load_file(str(tmp_path / "graph.safetensors")))
    rebuilt.eval()

    count = sum(p.numel() for p in original.parameters())
    assert sum(p.numel() for p in rebuilt.parameters()) == count
    assert analysis.totals()["params"] == count
    (given,) = parse_inputs([spec])
    x = example(original, given)
    if given.dtype == "int64":
        assert document["nodes"][0]["params"]["x_dtype"] == "int64"
        x = torch.randint(0, 50, given.shape)  # every id, not only those of the trace
    with torch.no_grad():
        expected, got = original(x), rebuilt(x)
    assert got.shape == expected.shape
    diff = float((got - expected).abs().max())
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    FIGURES[name] = {"params": count, "max_abs_diff": diff, "nodes": len(document["nodes"])}


def test_resnet_keeps_its_residual_structure():
    graph, _ = import_module(import_models.ResNet18(), (1, 3, 32, 32))
    types = [n.type for n in graph.nodes]
    assert types.count("Add") == 8  # one per BasicBlock
    assert types.count("Conv2d") == 20 and types.count("BatchNorm2d") == 20  # 17 + 3 downsample
    downsample = next(n for n in graph.nodes if n.label == "layer2.0.downsample.0")
    assert downsample.params == {"out_channels": 128, "kernel_size": 1, "stride": 2, "bias": False}
    add = next(n for n in graph.nodes if n.type == "Add")
    assert len(add.inputs) == 2
    assert graph.outputs[0][2] == (1, 10)


def test_transformer_layers_are_catalog_nodes_with_their_settings():
    model = import_models.TransformerClassifier(num_classes=4)
    graph, _ = import_module(model, (2, 7, 12))
    layers = [n for n in graph.nodes if n.type == "TransformerEncoderLayer"]
    assert [n.label for n in layers] == ["encoder.layers.0", "encoder.layers.1"]
    assert layers[0].params == {"dim_feedforward": 64}  # nhead 4, dropout 0.1: the defaults
    assert next(n for n in graph.nodes if n.type == "Mean").params == {"dim": [1]}


def test_relu6_hardsigmoid_glu_and_rmsnorm_are_catalog_nodes_as_modules_and_functions():
    graph, _ = import_module(import_models.MobileGates(), (2, 3, 8, 8))
    by_type: dict[str, list] = {}
    for n in graph.nodes:
        by_type.setdefault(n.type, []).append(n)
    assert len(by_type["ReLU6"]) == 2 and len(by_type["Hardsigmoid"]) == 2  # module + F.*
    assert sorted(n.params.get("dim", -1) for n in by_type["GLU"]) == [-1, 1]
    assert [n.params for n in by_type["Hardtanh"]] == [{"min_val": -0.25, "max_val": 0.75}]
    assert [n.params for n in by_type["RMSNorm"]] == [{"eps": 1e-6}]
    assert [n.params for n in by_type["AdaptiveMaxPool2d"]] == [{"output_size": 2}]
    assert "CustomLayer" not in by_type


def test_unknown_operations_stay_opaque_and_say_what_they_were(tmp_path, capsys):
    out = tmp_path / "graph.json"
    torch.save(import_models.WithOpaque().state_dict(), tmp_path / "w.pt")
    argv = [f"{MODELS}:WithOpaque", "--input-shape", "2,8", "-o", str(out)]
    code = run_cli(*argv, "--weights", str(tmp_path / "w.pt"))
    err = capsys.readouterr().err
    assert code == OPAQUE_EXIT == 3  # distinct: imported, but there is work left
    assert "2 opaque node(s) without a torchloom equivalent, rewrite them" in err
    assert "opaque node clip: clip (torch.nn.modules.activation.Softsign)" in err
    assert "torch.cumsum" in err
    source = "from: return self.fc2(torch.cumsum(self.clip(self.fc1(x)), dim=1))"
    assert err.count(source) == 2  # each with the Python expression it came from
    # every other node's weights are written, under the generated module's names
    assert set(load_file(str(tmp_path / "graph.safetensors"))) == {
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
    }  # fmt: skip
    assert run_cli(*argv, "--allow-opaque") == 0
    assert "accepted (--allow-opaque)" in capsys.readouterr().err
    document = json.loads(out.read_text())
    opaque = [n for n in document["nodes"] if n["type"] == "CustomLayer"]
    assert [n["label"] for n in opaque] == [
        "opaque: clip (torch.nn.modules.activation.Softsign)",
        "opaque: torch.cumsum",
    ]
    # validation names the opaque node: custom code is off, and where it runs it fails loudly
    # (the first one: shapes after it are unknown until it is rewritten)
    errors = analyze(document).error_list
    assert {e.node for e in errors} == {"clip"}
    assert all(e.code == "custom_code_disabled" for e in errors)
    loud = analyze(document, allow_custom_code=True).error_list
    assert any("opaque node: clip" in str(e) for e in loud)


def test_a_bare_parameter_becomes_a_parameter_node():
    model = import_models.WithParameter()
    graph, state = import_module(model, (2, 8))
    (param,) = [n for n in graph.nodes if n.type == "Parameter"]
    assert (param.id, param.params, param.module_path) == ("offset", {"shape": [1, 4]}, "offset")
    add = next(n for n in graph.nodes if n.type == "Add")
    assert ("in", "offset", "out") in add.inputs and not graph.opaque
    assert torch.equal(state["offset"], model.offset.detach())


def test_expand_arange_and_sdpa_map_to_their_nodes():
    graph, _ = import_module(import_models.TokensAndPositions(), (2, 5, 6))
    by_type = {n.type: n for n in graph.nodes}
    expand, ids = by_type["Expand"], by_type["PositionIds"]
    assert expand.inputs == [("in", "cls_token", "out"), ("like", "proj", "out")]
    assert ids.params == {} and ids.inputs == [("in", "cat", "out")]  # (1, T): unsqueeze folded
    assert "Unsqueeze" not in by_type and not graph.opaque
    graph, _ = import_module(import_models.CausalAttention(), (2, 6, 8))
    sdpa = next(n for n in graph.nodes if n.type == "ScaledDotProductAttention")
    assert sdpa.params == {"is_causal": True}
    assert [p for p, _, _ in sdpa.inputs] == ["query", "key", "value"]


def test_a_causal_mask_becomes_the_causal_option():
    graph, _ = import_module(import_models.CausalEncoder(), (2, 6, 16))
    causal = [n.label for n in graph.nodes if n.params.get("causal")]
    assert causal == ["blocks.layers.0", "blocks.layers.1", "attn", "last"]
    assert not graph.opaque


def test_a_padding_mask_computed_from_the_input_leaves_only_the_comparison_opaque():
    """The layer takes its key-padding mask on its src_key_padding_mask port; the comparison
    that computes the mask (x[:, :, 0] > 0) has no catalog node and stays opaque."""
    graph, _ = import_module(import_models.PaddingMasked(), (2, 5, 8))
    assert graph.opaque == ["gt: _operator.gt (no catalog node computes it)"]
    (layer,) = [n for n in graph.nodes if n.type == "TransformerEncoderLayer"]
    assert ("src_key_padding_mask", "gt", "out") in layer.inputs


def test_vit_keeps_its_learned_tensors():
    graph, state = import_module(import_models.ViTTiny(), (1, 3, 16, 16))
    params = {n.id: n.params["shape"] for n in graph.nodes if n.type == "Parameter"}
    assert params == {"cls_token": [1, 1, 32], "pos_embed": [1, 17, 32]}
    (expand,) = [n for n in graph.nodes if n.type == "Expand"]
    assert expand.inputs[0] == ("in", "cls_token", "out")
    assert {"cls_token", "pos_embed"} <= set(state)


def test_a_bare_buffer_makes_its_user_opaque(tmp_path, capsys):
    out = tmp_path / "graph.json"
    assert run_cli(f"{MODELS}:WithBuffer", "--input-shape", "2,8", "-o", str(out)) == 3
    err = capsys.readouterr().err
    assert "uses the model's tensor self.offset directly" in err
    assert "from: return self.fc(x) + self.offset" in err
    (opaque,) = [n for n in json.loads(out.read_text())["nodes"] if n["type"] == "CustomLayer"]
    assert opaque["label"] == "opaque: _operator.add"


def test_a_pattern_no_converter_knows_is_a_clear_failure_not_a_traceback(tmp_path, capsys):
    """Before: TypeError: 'Node' object is not iterable, with a traceback. The cat reads the
    split's raw output (no tensor to follow), so it cannot even stay opaque: a clear failure."""
    out = tmp_path / "graph.json"
    assert run_cli(f"{MODELS}:CatOfSplit", "--input-shape", "2,8", "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert "cat (torch.cat): torchloom cannot convert it (TypeError" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize(
    ("spec", "shape", "says"),
    [
        ("Branchy", "2,8", "torch.fx cannot trace Branchy.forward"),
        ("Shared", "2,8", "fc (Linear) is called 2 times: its weights are shared"),
        ("LeNet5", "1,3,28,28", "LeNet5 fails on an input of shape [1, 3, 28, 28]"),
        ("LeNet5", "1,a", "--input-shape '1,a': expected integers"),
        ("LeNet5", "1,1,28,28:int8", "--input-shape '1,1,28,28:int8': unknown dtype 'int8'"),
        ("LeNet5", "1,1,28,28;1,1,28,28", "2 inputs given (--input-shape), but LeNet5.forward"),
        ("TwoInputs", "2,8;2,8", "forward's input mask is used (mul)"),
        ("LeNet5", "28", "give the batch and every sample dimension"),
        ("Missing", "1,8", "defines no Missing"),
    ],
)
def test_import_failures_are_clear(spec, shape, says, tmp_path, capsys):
    code = run_cli(f"{MODELS}:{spec}", "--input-shape", shape, "-o", str(tmp_path / "g.json"))
    err = capsys.readouterr().err
    assert code == 1 and says in err and "Traceback" not in err
    assert not (tmp_path / "g.json").exists()


def test_weights_that_do_not_fit_are_listed(tmp_path, capsys):
    state = import_models.LeNet5(num_classes=7).state_dict()
    torch.save(state, tmp_path / "w.pt")
    code = run_cli(
        f"{MODELS}:LeNet5", "--input-shape", "1,1,28,28", "--weights", str(tmp_path / "w.pt"),
        "-o", str(tmp_path / "g.json"),
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "fc3.weight: the model expects shape [10, 84], the file has [7, 84]" in err


def test_bad_args_and_files(tmp_path, capsys):
    assert run_cli(f"{MODELS}:LeNet5", "--input-shape", "1,1,28,28", "--args", "{bad",
                   "-o", str(tmp_path / "g.json")) == 1  # fmt: skip
    assert "--args is not valid JSON" in capsys.readouterr().err
    assert run_cli(f"{MODELS}:LeNet5", "--input-shape", "1,1,28,28", "--args", '{"nope": 1}',
                   "-o", str(tmp_path / "g.json")) == 1  # fmt: skip
    assert "LeNet5({'nope': 1}) fails: TypeError" in capsys.readouterr().err
    assert run_cli(f"{tmp_path}/none.py:X", "--input-shape", "1,2", "-o", "g.json") == 1
    assert "no such file" in capsys.readouterr().err


def test_imported_document_trains_as_a_project():
    """The document is complete: data (shaped like the input), a loss fitting the output, an
    optimizer and training settings; the generated module is the imported one."""
    graph, _ = import_module(import_models.LeNet5(), (1, 1, 28, 28), name="LeNet")
    document = to_document(graph)
    kinds = {n["type"] for n in document["nodes"]}
    assert {"Dataset", "CrossEntropyLoss", "Adam", "Training"} <= kinds
    data = next(n for n in document["nodes"] if n["type"] == "Dataset")
    assert data["params"] == {
        "source": "file",
        "x_shape": [1, 28, 28],
        "task": "classification",
        "num_classes": 10,
    }
    assert "class LeNet(nn.Module)" in compile_graph(document).source


def test_token_inputs_trace_with_ids_every_embedding_accepts():
    """Random float input would fail in the Embedding: int64 ids below its vocabulary trace."""
    graph, _ = import_module(
        import_models.LSTMTextClassifier(vocab_size=7), [ExampleInput((4, 30), "int64")]
    )
    assert graph.input_dtype == "int64" and graph.outputs[0][2] == (4, 3)
    assert [n.type for n in graph.nodes][:2] == ["Embedding", "LSTM"]


def test_several_inputs_repeat_the_flag_or_use_semicolons(tmp_path, capsys):
    """A second input nothing reads is traced (forward's own default path) and left out."""
    for argv in (["2,8", "--input-shape", "2,8"], ["2,8;2,8"]):
        out = tmp_path / "g.json"
        code = run_cli(f"{MODELS}:TwoInputs", "--args", '{"use_mask": false}',
                       "--input-shape", *argv, "-o", str(out))  # fmt: skip
        assert code == 0, capsys.readouterr().err
        assert analyze(json.loads(out.read_text())).ok


@pytest.mark.parametrize(
    ("spec", "shape", "args", "outputs"),
    [
        ("UNet", "1,3,32,32", {"base": 4}, [[1, 2, 32, 32]]),
        ("TwoHeads", "2,8", None, [[2, 3], [2, 5]]),
    ],
)
def test_an_output_without_an_obvious_loss_is_a_model_only_graph(
    spec, shape, args, outputs, tmp_path, capsys
):
    """Before: an MSELoss against a (B, 2) target, shape errors and exit 1."""
    out = tmp_path / "g.json"
    argv = [f"{MODELS}:{spec}", "--input-shape", shape, "-o", str(out), "--json"]
    argv += ["--weights", str(tmp_path / "w.pt")]
    torch.save(getattr(import_models, spec)(**(args or {})).state_dict(), tmp_path / "w.pt")
    if args:
        argv += ["--args", json.dumps(args)]
    assert run_cli(*argv) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_only"] and summary["errors"] == [] and summary["weights"]
    document = json.loads(out.read_text())
    roles = {n["type"] for n in document["nodes"]}
    assert not roles & {"MSELoss", "CrossEntropyLoss", "Adam", "Training"}
    assert "Model only: no obvious loss" in document["description"]
    assert analyze(document, model_only=True).ok  # valid as the model it is
    codes = {e.code for e in analyze(document).error_list}  # training needs what the user adds
    assert codes == {"no_loss", "no_optimizer"}
    assert main(["validate", "--model-only", str(out)]) == 0
    assert main(["validate", str(out)]) == 1
    capsys.readouterr()
    compiled = compile_graph(analyze(document, model_only=True)).instantiate()
    compiled.load_state_dict(load_file(str(tmp_path / "g.safetensors")))
    shapes = compiled(torch.randn(*parse_inputs([shape])[0].shape))
    got = [list(t.shape) for t in (shapes if isinstance(shapes, tuple) else (shapes,))]
    assert got == outputs


def test_the_opaque_exit_code_is_documented(capsys):
    with pytest.raises(SystemExit):
        main(["import-module", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "3 imported with opaque nodes left to rewrite" in text and "--allow-opaque" in text


def test_constants_with_tensors_are_scale_nodes_and_hard_gates_map():
    """Before: x * 4, x + 1, 1 - x, x / 8 and -x were opaque (_operator.mul, ...)."""
    graph, _ = import_module(import_models.ScalarArithmetic(), (2, 8))
    scales = [n.params for n in graph.nodes if n.type == "Scale"]
    assert scales == [
        {"scale": 4.0}, {"shift": 1.0}, {"shift": -0.5}, {"scale": -1.0, "shift": 1.0},
        {"scale": 0.125}, {"scale": -1.0},
    ]  # fmt: skip
    types = [n.type for n in graph.nodes]
    assert types.count("Hardswish") == types.count("ReLU6") == 2 and "Hardtanh" in types
    assert not graph.opaque and types.count("Add") == 2  # tensor + tensor stays an Add


def test_an_imported_token_model_trains_on_token_ids_from_its_weights(tmp_path, capsys):
    """The Dataset an int64 import writes (x_dtype int64) reads ids as ids: the engine trains
    the imported model, starting from the carried weights."""
    import numpy as np

    from server.cli import main as server_main

    args = {"vocab_size": 7, "embed_dim": 4, "hidden": 8, "num_classes": 3}
    torch.save(import_models.LSTMTextClassifier(**args).state_dict(), tmp_path / "w.pt")
    graph = tmp_path / "g.json"
    assert run_cli(f"{MODELS}:LSTMTextClassifier", "--input-shape", "2,12:int64",
                   "--args", json.dumps(args), "--weights", str(tmp_path / "w.pt"),
                   "-o", str(graph)) == 0  # fmt: skip
    ids = np.random.default_rng(0).integers(0, 7, (60, 12))
    np.savez(tmp_path / "tokens.npz", x=ids, y=ids[:, -1] % 3)
    document = json.loads(graph.read_text())
    document["nodes"][0]["params"]["path"] = str(tmp_path / "tokens.npz")
    graph.write_text(json.dumps(document))
    out = tmp_path / "run"
    argv = ["train", str(graph), "--epochs", "1", "--out", str(out), "--quiet"]
    assert server_main([*argv, "--init-weights", str(tmp_path / "g.safetensors")]) == 0
    (metrics,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics["epoch"] == 1 and np.isfinite(metrics["val_loss"])
