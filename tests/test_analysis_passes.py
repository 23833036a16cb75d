"""The analysis passes one at a time, each on its own context: a pass records only its own
problems and reads only what the passes before it left (graph_compiler/analysis/pipeline.py)."""

from __future__ import annotations

from graph_compiler.analysis import (
    PASSES,
    AnalysisContext,
    analyze,
    blocks,
    lints,
    run_passes,
    structure,
    wiring,
)
from graph_compiler.document import parse_document
from tests.helpers import add, chain, edge, mlp, node


def _context(document: dict) -> AnalysisContext:
    doc, problems = parse_document(document)
    assert doc is not None and not problems
    return AnalysisContext(doc)


def _codes(ctx: AnalysisContext) -> list[str]:
    return [e.code for e in ctx.errors]


def test_structure_alone_finds_a_cycle_without_inferring_anything():
    # data → add → fc → act → loss, and act → add closes add → fc → act → add
    doc = chain("digits", [("add", "Add", {}), ("fc", "Linear", {"out_features": 10}), "ReLU"])
    act = doc["nodes"][-4]["id"]
    add(doc, edge(act, "add"))
    ctx = _context(doc)
    structure.check_scopes(ctx)
    assert _codes(ctx) == ["cycle"]
    assert "add → fc → " in ctx.errors[0].message
    # the nodes in the cycle are left out of the order; nothing later ran
    assert ctx.top is not None and "fc" not in ctx.top.order and "data" in ctx.top.order
    assert ctx.result is None and ctx.settings == {} and ctx.data_node is None


def test_wiring_alone_reports_only_the_training_wiring():
    # a shape problem (fc2 → 3 classes for digits' 10) that only inference and the loss checks see
    doc = mlp(optimizer=None)
    next(n for n in doc["nodes"] if n["id"] == "fc2")["params"]["out_features"] = 3
    ctx = _context(doc)
    structure.check_scopes(ctx)
    assert ctx.errors == []
    wiring.check_roles(ctx)
    assert _codes(ctx) == ["no_optimizer", "loss_unused"]
    assert ctx.data_node == "data"
    # the full pipeline finds the class count as well
    assert {"no_optimizer", "loss_unused", "class_count"} <= {e.code for e in analyze(doc).errors}


def test_the_unused_node_lint_runs_on_a_context_without_inference():
    doc = mlp()
    add(doc, node("spare", "Linear", {"out_features": 4}), edge("relu", "spare"))
    ctx = _context(doc)
    structure.check_scopes(ctx)
    lints.check_unused(ctx)
    assert [(e.code, e.node, e.severity) for e in ctx.errors] == [
        ("unused_node", "spare", "warning")
    ]


def test_block_recursion_pass_marks_the_blocks_that_contain_themselves():
    doc = mlp()
    doc["blocks"] = {
        "Loop": {
            "nodes": [
                node("in", "Input"),
                node("again", "Block", {"block": "Loop"}),
                node("out", "Output"),
            ],
            "edges": [edge("in", "again", "out", "in"), edge("again", "out", "out", "in")],
        }
    }
    ctx = _context(doc)
    structure.check_scopes(ctx)
    assert not any(e.code == "block_recursion" for e in ctx.errors)
    blocks.check_recursion(ctx)
    assert ctx.recursive == {"Loop"}
    assert [e.code for e in ctx.errors if e.block == "Loop"][-1] == "block_recursion"


def test_the_pipeline_without_a_pass_loses_exactly_that_pass_s_problems():
    doc = mlp()
    add(doc, node("spare", "Linear", {"out_features": 4}), edge("relu", "spare"))
    full = run_passes(_context(doc))
    assert [e.code for e in full.errors] == ["unused_node"]
    without = run_passes(_context(doc), tuple(p for p in PASSES if p is not lints.check_unused))
    assert without.errors == []
    assert without.result is not None and "fc2" in without.result.nodes
