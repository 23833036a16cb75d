"""Every graph in examples/: valid without warnings, lint-clean code, runnable, trainable, stable.

The examples are found by glob, so a new example is covered by adding its JSON file.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from graph_compiler import analyze, build_module, build_plan, generate, model_interface
from graph_compiler.analysis import Analysis

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
BATCH = 5  # substituted for the symbolic batch size B

by_example = pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])


@functools.cache
def _analysis(path: Path) -> Analysis:
    return analyze(path.read_bytes())


def _random_batch(a: Analysis, seed: int = 0) -> dict[str, torch.Tensor]:
    """x and y for BATCH samples, with the shapes and dtypes the Dataset node declares."""
    gen = torch.Generator().manual_seed(seed)
    data = a.data

    def tensor(shape: tuple[int, ...], dtype: str, classes: int | None) -> torch.Tensor:
        if dtype.startswith("int"):
            return torch.randint(0, classes or 2, (BATCH, *shape), generator=gen)
        return torch.randn((BATCH, *shape), generator=gen)

    return {
        "x": tensor(data.x_shape, data.x_dtype, None),
        "y": tensor(data.y_shape, data.y_dtype, data.num_classes),
    }


def _ruff() -> str:
    beside_python = Path(sys.executable).with_name("ruff")
    found = str(beside_python) if beside_python.exists() else shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return found


def _reverse_keys(value: Any) -> Any:
    """The same JSON data with every object's keys in reverse order (lists keep their order)."""
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


def test_there_are_examples():
    assert len(EXAMPLES) >= 8, f"expected at least 8 examples in {ROOT / 'examples'}"


# --- the documents -------------------------------------------------------------------------------


@by_example
def test_example_is_valid_without_warnings(path: Path):
    a = _analysis(path)
    problems = [f"{e.severity} {e.code} at {e.node}: {e.message}" for e in a.errors]
    assert a.ok and not problems, "\n".join(problems)


@by_example
def test_example_is_presentable(path: Path):
    """Named, described, labelled, and laid out left to right for the canvas."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["format"] == "torchloom.graph/1"
    assert raw.get("name") and raw.get("description")
    scopes = [("the graph", raw["nodes"], raw["edges"])]
    scopes += [(f"block {n}", b["nodes"], b["edges"]) for n, b in raw.get("blocks", {}).items()]
    for where, nodes, edges in scopes:
        positions = {n["id"]: tuple(n["position"]) for n in nodes}
        assert len(set(positions.values())) == len(nodes), f"{where}: two nodes share a position"
        unlabelled = [n["id"] for n in nodes if not n.get("label")]
        assert not unlabelled, f"{where}: nodes without a label: {unlabelled}"
        backwards = [
            f"{e['source']} → {e['target']}"
            for e in edges
            if positions[e["source"]][0] >= positions[e["target"]][0]
        ]
        assert not backwards, f"{where}: edges that do not run left to right: {backwards}"
    types = [n["type"] for n in raw["nodes"]]
    assert "Training" in types


# --- the generated code --------------------------------------------------------------------------


@by_example
def test_generated_code_passes_ruff(path: Path, tmp_path: Path):
    ruff = _ruff()
    model_py = tmp_path / "model.py"
    model_py.write_text(generate(_analysis(path)), encoding="utf-8")
    common = ["--config", str(PYPROJECT), "--no-cache", str(model_py)]
    for command in (["check", "--quiet"], ["format", "--check", "--diff"]):
        done = subprocess.run(
            [ruff, *command, *common], capture_output=True, text=True, cwd=tmp_path, check=False
        )
        assert done.returncode == 0, f"ruff {command[0]}:\n{done.stdout}{done.stderr}"


@by_example
def test_generated_code_is_deterministic(path: Path):
    text = path.read_text(encoding="utf-8")
    first = generate(text)
    assert generate(text) == first
    reordered = json.dumps(_reverse_keys(json.loads(text)))
    assert reordered != json.dumps(json.loads(text))
    assert generate(reordered) == first


# --- the built model and its training plan -------------------------------------------------------


@by_example
def test_forward_gives_the_analysed_shapes(path: Path):
    a = _analysis(path)
    iface = model_interface(a)
    batch = _random_batch(a)
    model = build_module(a, seed=0).eval()
    with torch.no_grad():
        out = model(*(batch[name] for name in iface.inputs))
    outputs = out if isinstance(out, tuple) else (out,)
    expected = [a.result(node).outputs[port] for node, port in iface.outputs]
    assert [tuple(t.shape) for t in outputs] == [info.concrete(BATCH) for info in expected]
    assert [str(t.dtype) for t in outputs] == [f"torch.{info.dtype}" for info in expected]
    assert all(torch.isfinite(t).all() for t in outputs)


@by_example
def test_parameter_count_matches_analysis(path: Path):
    a = _analysis(path)
    model = build_module(a)
    assert sum(p.numel() for p in model.parameters()) == a.totals()["params"]


@by_example
def test_one_optimizer_step_changes_the_parameters(path: Path):
    a = _analysis(path)
    torch.manual_seed(0)
    plan = build_plan(a)
    batch = _random_batch(a, seed=1)
    before = {name: p.detach().clone() for name, p in plan.model.named_parameters()}

    plan.model.train()
    total, parts = plan.compute_loss(plan.forward(batch), batch)
    assert total.ndim == 0 and torch.isfinite(total)
    loss_nodes = [n for n, s in a.top.scope.specs.items() if s.role == "loss"]
    assert sorted(parts) == sorted(a.result(n).label for n in loss_nodes)
    for term in plan.losses:
        assert term.weight == a.result(term.node_id).params["loss_weight"]

    plan.optimizer.zero_grad()
    total.backward()
    plan.optimizer.step()
    unchanged = [name for name, p in plan.model.named_parameters() if torch.equal(p, before[name])]
    assert not unchanged, f"parameters not updated by the step: {unchanged}"

    if plan.scheduler is not None:
        assert plan.scheduler_interval in ("epoch", "step")
        if plan.scheduler_monitor is not None:  # ReduceLROnPlateau watches a metric
            plan.scheduler.step(total.item())
        else:
            plan.scheduler.step()
        lrs = [group["lr"] for group in plan.optimizer.param_groups]
        assert all(0 < lr < float("inf") for lr in lrs)
