"""Reusable blocks and user code (categories "blocks" and "custom")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .losses import LOSS_WEIGHT
from .registry import register
from .spec import NodeSpec, Param, Port

register(
    NodeSpec(
        type="Block",
        category="blocks",
        doc="An instance of a reusable block (its own nn.Module class), repeated `repeat` times.",
        role="block",
        params=(
            Param("block", "str", description="Name of the block definition.", positional=True),
            Param(
                "repeat",
                "int",
                1,
                "Apply the block this many times in sequence (needs one input and one output).",
                min=1,
                max=1000,
            ),
        ),
        inputs=(),  # the block definition's Input nodes name the ports
        outputs=(),  # ... and its Output nodes
        keywords=("block", "subgraph", "module", "repeat", "residual"),
    )
)
register(
    NodeSpec(
        type="Input",
        category="blocks",
        doc="An input of a block definition; its id names the Block node's input port.",
        role="block_io",
        inputs=(),
        outputs=(Port("out"),),
    )
)
register(
    NodeSpec(
        type="Output",
        category="blocks",
        doc="An output of a block definition; its id names the Block node's output port.",
        role="block_io",
        inputs=(Port("in"),),
        outputs=(),
    )
)


def _custom_inputs(p: Mapping[str, Any]) -> tuple[Port, ...]:
    names = p.get("inputs") or ("x",)
    return tuple(Port(str(n)) for n in names)


DEFAULT_LAYER_CODE = "return x * self.scale"
register(
    NodeSpec(
        type="CustomLayer",
        category="custom",
        doc="Your own layer: Python for forward(), with declared parameters. Runs only where the "
        "server allows custom code.",
        role="custom",
        params=(
            Param(
                "code",
                "code",
                DEFAULT_LAYER_CODE,
                "Body of forward(self, <inputs>); torch, nn and F are imported.",
            ),
            Param("inputs", "json", ("x",), "Names of the forward arguments (input ports)."),
            Param(
                "parameters",
                "json",
                ({"name": "scale", "shape": [1], "init": "ones"},),
                'Learned tensors: [{"name", "shape", "init": zeros|ones|normal|uniform}].',
            ),
        ),
        inputs=_custom_inputs,
        keywords=("custom", "python", "code", "lambda"),
    )
)
register(
    NodeSpec(
        type="CustomLoss",
        category="custom",
        doc="Your own loss: Python for forward(self, input, target) returning a scalar.",
        role="loss",
        params=(
            Param(
                "code",
                "code",
                "return F.mse_loss(input, target)",
                "Body of forward(self, input, target); torch, nn and F are imported.",
            ),
            LOSS_WEIGHT,
        ),
        inputs=(Port("input"), Port("target")),
        outputs=(Port("loss", kind="loss"),),
        keywords=("custom", "python", "code", "loss"),
    )
)
