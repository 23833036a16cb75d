"""FLOPs per sample, as the summary and the editor show them, against multiply-adds counted by
hand (a multiply-add counts 2; elementwise activations and bias additions count nothing)."""

from __future__ import annotations

from graph_compiler import analyze
from tests.helpers import chain


def test_flops_per_node_are_twice_the_multiply_adds():
    doc = chain(
        "digits_images",  # x (B, 1, 8, 8)
        [
            ("conv", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
            ("act", "ReLU", {}),
            ("pool", "MaxPool2d", {"kernel_size": 2}),
            ("flat", "Flatten", {}),
            ("fc", "Linear", {"out_features": 10}),
        ],
    )
    analysis = analyze(doc)
    assert analysis.ok, analysis.error_list
    nodes = analysis.to_json()["nodes"]  # what the editor receives
    flops = {n: nodes[n]["flops"] for n in ("conv", "act", "pool", "flat", "fc")}
    conv = 8 * 8 * 8 * (1 * 3 * 3)  # every output element: one 1×3×3 window of multiply-adds
    fc = (8 * 4 * 4) * 10  # after the 2×2 pooling: 128 inputs to each of 10 outputs
    assert flops["conv"] == 2 * conv
    assert flops["fc"] == 2 * fc
    assert flops["act"] == 0
    assert analysis.totals()["flops"] == sum(flops.values())
