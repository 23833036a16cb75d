"""Nested Block repeats: the size after expansion is bounded at validation, computed without
expanding (a 2 KB graph standing for two billion layers is refused in milliseconds), and block
chains of any depth are analysed without overflowing Python's stack."""

from __future__ import annotations

import time

from graph_compiler import analyze, generate
from graph_compiler.errors import GraphCompileError
from graph_compiler.limits import MAX_BLOCK_DEPTH, MAX_EXPANDED_NODES
from tests.helpers import find_node
from tests.test_validation import _nested_blocks


def test_three_levels_of_1000_repeats_are_refused_fast_with_the_count():
    doc = _nested_blocks(3, 1000)  # two billion Linear layers once expanded
    analyze(doc)  # warm the inference caches
    started = time.perf_counter()
    a = analyze(doc)
    elapsed = time.perf_counter() - started
    assert [e.code for e in a.errors] == ["graph_too_large"]
    assert "2,001,001,002 nodes" in a.errors[0].message
    assert elapsed < 2.0  # milliseconds here; before the bound it validated and built forever


def test_the_node_limit_counts_layers_and_block_instances():
    # blk × 50 → L1 × 499 → L0 (one Linear): 50 × (1 + 499 × 2) + fc0 + fc2 = 49,952 nodes
    doc = _nested_blocks(2, 499)
    find_node(doc, "blk")["params"]["repeat"] = 50
    a = analyze(doc)
    assert a.ok, [str(e) for e in a.errors]
    find_node(doc, "blk")["params"]["repeat"] = 51  # 50,951
    a = analyze(doc)
    assert [e.code for e in a.errors] == ["graph_too_large"]
    assert f"50,951 nodes (blocks × their repeats), above the limit of {MAX_EXPANDED_NODES:,}" in (
        a.errors[0].message
    )


def test_a_block_chain_thousands_deep_is_refused_not_a_recursion_error():
    doc = _nested_blocks(2000, 1)  # 850 KB; raised RecursionError in the analysis before
    a = analyze(doc)
    assert [e.code for e in a.errors] == ["blocks_too_deep"]
    assert generate(_nested_blocks(MAX_BLOCK_DEPTH, 1))  # the deepest allowed chain builds
    try:
        generate(doc)
    except GraphCompileError as exc:
        assert exc.errors[0].code == "blocks_too_deep"
    else:
        raise AssertionError("a too-deep chain generated code")
