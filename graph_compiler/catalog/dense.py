"""Dense layers: Linear and Bilinear (category "layers")."""

from __future__ import annotations

from torch import nn

from .layer_entry import BIAS, FLATTEN_HINT, inferred, layer, size
from .spec import Param, Port

layer(
    "Linear",
    nn.Linear,
    "Fully connected layer: y = x·Wᵀ + b over the last dimension.",
    [
        inferred("in_features", -1, "Input features"),
        size("out_features", "Output features."),
        BIAS,
        # graph_compiler/analysis/ties.py checks it; codegen assigns the shared weight
        Param(
            "tie_weight",
            "str",
            "",
            "Share this Embedding's weight (its node id; GPT's output head): the weight "
            "(out_features, in_features) is the table (num_embeddings, embedding_dim).",
            torch_arg=False,
            node_ref="Embedding",
        ),
    ],
    inputs=(Port("in", ranks=(2, 3), layout="2-D (B, features) or 3-D (B, T, features)"),),
    hint=FLATTEN_HINT,
    keywords=("dense", "fully connected", "fc"),
)
layer(
    "Bilinear",
    nn.Bilinear,
    "Bilinear layer: y = x1ᵀ·A·x2 + b, combining two inputs.",
    [
        inferred("in1_features", -1, "First input features", port="in1"),
        inferred("in2_features", -1, "Second input features", port="in2"),
        size("out_features", "Output features."),
        BIAS,
    ],
    inputs=(Port("in1", ranks=(2, 3)), Port("in2", ranks=(2, 3))),
    call=lambda p, ins, m: f"{m}({ins['in1'][0]}, {ins['in2'][0]})",
    hint=FLATTEN_HINT,
)
