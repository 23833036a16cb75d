"""Readable names for a model.onnx's dynamic axes. torch.export names a dynamic dimension after
its internal symbol (`s77`, `s31`, ...), whatever the torch.export.Dim was called; ONNX tools
and the people who read the file see that name, so the graph inputs' first axis becomes `batch`
and any other dynamic input axis `seq` (`seq2`, ... when there are several)."""

from __future__ import annotations

import re

import onnx


def axis_names(model: onnx.ModelProto) -> dict[str, str]:
    """{torch symbol: readable name}, read off the graph inputs' symbolic dimensions."""
    names: dict[str, str] = {}
    seq = 0
    for value in model.graph.input:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            symbol = dim.dim_param
            if not symbol or symbol in names or not re.fullmatch(r"[A-Za-z_]\w*", symbol):
                continue
            if axis == 0 and "batch" not in names.values():
                names[symbol] = "batch"
            else:
                seq += 1
                names[symbol] = "seq" if seq == 1 else f"seq{seq}"
    return names


def rename_dynamic_axes(model: onnx.ModelProto) -> dict[str, str]:
    """Renames the symbols everywhere they appear (inputs, outputs, intermediate shapes, also
    inside expressions such as `s77*6`); returns the renaming."""
    names = axis_names(model)
    if not names:
        return names
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")

    def rename(values) -> None:
        for value in values:
            if not value.type.HasField("tensor_type"):
                continue
            for dim in value.type.tensor_type.shape.dim:
                if dim.dim_param:
                    dim.dim_param = pattern.sub(lambda m: names[m.group(1)], dim.dim_param)

    graph = model.graph
    rename(graph.input)
    rename(graph.output)
    rename(graph.value_info)
    return names
