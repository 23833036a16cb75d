"""The `torchloom` command line, in-process (main([...])) and once as the installed script."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from graph_compiler import cli
from graph_compiler.cli import main
from tests.helpers import cnn, mlp, set_params


@pytest.fixture
def capture(monkeypatch, capsys):
    """capsys, with problem lines following it (see test_problems_follow_redirected_stdout)."""
    original = cli._print_problems

    def print_problems(a, path, stream=None):
        original(a, path, sys.stdout if stream is None else stream)

    monkeypatch.setattr(cli, "_print_problems", print_problems)
    return capsys


def test_problems_follow_redirected_stdout(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(set_params(mlp(), "fc1", out_features=0)))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["validate", str(path)]) == 1
    assert "param_range" in buffer.getvalue()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(cnn(name="digits cnn")))
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    doc = set_params(mlp(), "fc1", out_features=0)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def test_validate_ok(good, capture):
    assert main(["validate", str(good)]) == 0
    out = capture.readouterr().out
    assert f"{good}: ok" in out
    assert "params" in out


def test_validate_ok_with_warnings(tmp_path, capture):
    path = tmp_path / "warn.json"
    path.write_text(json.dumps(mlp(with_training=False)))
    assert main(["validate", str(path)]) == 0
    out = capture.readouterr().out
    assert "warning: no_training_settings" in out
    assert "1 warning(s)" in out


def test_validate_invalid(bad, capture):
    assert main(["validate", str(bad)]) == 1
    out = capture.readouterr().out
    assert f"{bad}: error: param_range at fc1.out_features: fc1: out_features must be >= 1" in out
    assert ": ok" not in out


def test_validate_several_files_any_error_fails(good, bad, capture):
    assert main(["validate", str(good), str(bad)]) == 1
    out = capture.readouterr().out
    assert f"{good}: ok" in out and "param_range" in out


def test_validate_json(good, bad, capture):
    assert main(["validate", "--json", str(bad)]) == 1
    data = json.loads(capture.readouterr().out)
    assert data["file"] == str(bad)
    assert data["ok"] is False
    assert data["errors"][0]["code"] == "param_range"
    assert data["errors"][0]["node"] == "fc1"
    # several files: one JSON object per line
    assert main(["validate", "--json", str(good), str(bad)]) == 1
    lines = capture.readouterr().out.strip().splitlines()
    assert [json.loads(line)["ok"] for line in lines] == [True, False]


def test_validate_invalid_json_file(tmp_path, capture):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert main(["validate", str(path)]) == 1
    assert "invalid_json" in capture.readouterr().out


def test_validate_stdin(monkeypatch, capture):
    data = json.dumps(mlp()).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["validate", "-"]) == 0
    assert "-: ok" in capture.readouterr().out


def test_missing_file(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["validate", str(tmp_path / "nope.json")])
    assert "cannot read" in str(info.value.code)


def test_custom_code_flag(tmp_path, capture):
    doc = mlp(loss="CustomLoss", loss_params={"code": "return F.cross_entropy(input, target)"})
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(doc))
    assert main(["validate", str(path)]) == 1
    assert "custom_code_disabled" in capture.readouterr().out
    assert main(["validate", "--allow-custom-code", str(path)]) == 0


def test_shapes_table(good, capture):
    assert main(["shapes", str(good)]) == 0
    out = capture.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["Node", "Type", "Output", "shape", "Params", "FLOPs"]
    assert any(line.startswith("conv1") and "(B, 8, 8, 8)" in line for line in lines)
    assert any(line.startswith("fc") and "(B, 10)" in line for line in lines)
    # conv1: 8·(1·3·3) + 8 = 80; fc: (8·4·4)·10 + 10 = 1,290
    assert "Total params: 1,370  (trainable 1,370, frozen 0)" in out
    assert "Forward FLOPs per sample" in out


def test_shapes_invalid(bad, capture):
    assert main(["shapes", str(bad)]) == 1
    captured = capture.readouterr()
    assert "param_range" in captured.err
    assert "Total params" in captured.out  # the table of what could be inferred


def test_shapes_json(good, capture):
    assert main(["shapes", "--json", str(good)]) == 0
    data = json.loads(capture.readouterr().out)
    assert data["ok"] is True
    rows = {r["node"]: r for r in data["rows"]}
    assert rows["fc"]["output"] == "(B, 10)"
    assert data["totals"]["params"] == sum(r["params"] for r in data["rows"])


def test_compile_writes_a_working_model(good, tmp_path, capture):
    out_dir = tmp_path / "out"
    assert main(["compile", str(good), "-o", str(out_dir)]) == 0
    assert "wrote" in capture.readouterr().out
    model_py = out_dir / "model.py"
    assert model_py.exists()
    saved = json.loads((out_dir / "graph.json").read_text())
    assert saved["name"] == "digits cnn"
    spec = importlib.util.spec_from_file_location("compiled_model", model_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.DigitsCnn()
    y = model(torch.randn(4, 1, 8, 8))
    assert y.shape == (4, 10)


def test_compile_json_and_invalid(good, bad, tmp_path, capture):
    assert main(["compile", "--json", str(good), "-o", str(tmp_path / "a")]) == 0
    info = json.loads(capture.readouterr().out)
    assert info["class"] == "DigitsCnn" and info["params"] > 0
    assert main(["compile", str(bad), "-o", str(tmp_path / "b")]) == 1
    assert "param_range" in capture.readouterr().err
    assert not (tmp_path / "b").exists()


def test_catalog(capture):
    assert main(["catalog"]) == 0
    out = capture.readouterr().out
    assert "layers:" in out and "Conv2d" in out
    assert out.strip().endswith("node types")
    assert main(["catalog", "--json"]) == 0
    data = json.loads(capture.readouterr().out)
    assert len(data["nodes"]) >= 85


def test_schema(capture):
    assert main(["schema"]) == 0
    schema = json.loads(capture.readouterr().out)
    assert {"nodes", "edges", "blocks"} <= set(schema["properties"])


def test_examples_command(tmp_path, good, bad, capture):
    d = tmp_path / "examples"
    d.mkdir()
    (d / "a.json").write_text(good.read_text())
    (d / "b.json").write_text(bad.read_text())
    assert main(["examples", str(d)]) == 1
    out = capture.readouterr().out
    assert "=== a.json: digits cnn ===" in out
    assert "1/2 examples valid" in out
    (d / "b.json").unlink()
    assert main(["examples", str(d)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["examples", str(empty)]) == 1


def test_no_command_is_a_usage_error(capture):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_installed_console_script(good, bad):
    script = Path(sys.executable).parent / "torchloom"
    if not script.exists():
        pytest.skip("the torchloom console script is not installed in this environment")
    # one run (a fresh interpreter imports torch): a good and a bad graph, one JSON line each
    run = subprocess.run(
        [str(script), "validate", "--json", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    first, second = (json.loads(line) for line in run.stdout.strip().splitlines())
    assert first["ok"] is True and first["file"] == str(good)
    assert second["ok"] is False and second["errors"][0]["code"] == "param_range"
