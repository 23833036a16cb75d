"""An error inside a repeated block names the inner node and the repetition, in words
(PyTorch's raw text translated), and carries the inner node id and the block path so the block
editor can badge the inner node (graph_compiler/analysis/inference.py, failures.py)."""

from __future__ import annotations

from graph_compiler import analyze
from tests.helpers import chain, edge, node


def _shrinking(kernel: int, repeat: int, nested: bool = False) -> dict:
    """digits_images (B, 1, 8, 8) → blk (Block "down" × repeat) → flat → fc; "down" is one
    unpadded stride-2 Conv2d, so the input shrinks each repetition."""
    doc = chain(
        "digits_images",
        [
            ("blk", "Block", {"block": "outer" if nested else "down", "repeat": repeat}),
            ("flat", "Flatten", {}),
            ("fc", "Linear", {"out_features": 10}),
        ],
    )
    for e in doc["edges"]:
        if e["target"] == "blk":
            e["target_port"] = "x"
        if e["source"] == "blk":
            e["source_port"] = "out"
    conv = {"out_channels": 16, "kernel_size": kernel, "stride": 2}
    doc["blocks"] = {
        "down": {
            "nodes": [node("x", "Input"), node("conv2d1", "Conv2d", conv), node("out", "Output")],
            "edges": [edge("x", "conv2d1"), edge("conv2d1", "out")],
        }
    }
    if nested:
        doc["blocks"]["outer"] = {
            "nodes": [
                node("x", "Input"),
                node("inner", "Block", {"block": "down", "repeat": 2}),
                node("out", "Output"),
            ],
            "edges": [edge("x", "inner", "out", "x"), edge("inner", "out", "out", "in")],
        }
    return doc


def _error(doc: dict):
    errors = [e for e in analyze(doc).errors if e.severity == "error"]
    assert len(errors) == 1, [e.message for e in errors]
    return errors[0]


def test_the_failing_repetition_and_inner_node_are_named_in_words():
    # 8×8 → 3×3 after repetition 1 (kernel 3, stride 2); repetition 2 then needs 3×3: fine;
    # kernel 4: 8×8 → 3×3, and repetition 2's 4×4 kernel is larger than the 3×3 input
    err = _error(_shrinking(kernel=4, repeat=3))
    assert err.node == "blk" and err.block is None
    assert err.message == (
        "conv2d1 in repetition 2 of blk (block down) gets (B, 16, 3, 3): "
        "kernel 4×4 is larger than the 3×3 input"
    )
    assert "Calculated padded" not in err.message
    assert err.inner_node == "conv2d1"
    assert [(s.node, s.block, s.repetition) for s in err.path] == [("blk", "down", 2)]
    d = err.to_dict()
    assert d["inner_node"] == "conv2d1"
    assert d["path"] == [
        {"node": "blk", "block": "down", "repetition": 2, "repeat": 3, "label": "blk"}
    ]


def test_a_nested_block_failure_gives_the_whole_path():
    # outer × 2, each running down × 2: 8 → 3 → 1 (rep 1 of outer), then 1×1 in rep 2 fails
    err = _error(_shrinking(kernel=3, repeat=2, nested=True))
    assert err.node == "blk" and err.inner_node == "conv2d1"
    assert [(s.node, s.block, s.repetition) for s in err.path] == [
        ("blk", "outer", 2),
        ("inner", "down", 1),
    ]
    assert err.message == (
        "conv2d1 in repetition 1 of inner (block down), in repetition 2 of blk (block outer) "
        "gets (B, 16, 1, 1): kernel 3×3 is larger than the 1×1 input"
    )


def test_a_block_run_once_names_no_repetition_and_other_errors_keep_their_words():
    doc = _shrinking(kernel=9, repeat=1)
    err = _error(doc)
    assert (
        err.message
        == "conv2d1 in blk (block down) gets (B, 1, 8, 8): kernel 9×9 is larger than the 8×8 input"
    )
    doc["blocks"]["down"]["nodes"][1]["params"].update(kernel_size=3, groups=2)  # 1 channel
    err = _error(doc)
    assert err.message.startswith("conv2d1 in blk (block down): ") and err.inner_node == "conv2d1"
