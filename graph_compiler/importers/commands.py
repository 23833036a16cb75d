"""The `torchloom import-module` and `torchloom import-onnx` commands (CLI only).

Both write the graph document (-o graph.json) and, with weights, `graph.safetensors` next to it
under the generated module's key names: `torchloom train graph.json --init-weights
graph.safetensors` (or an upload into a project) starts from them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from ..analysis import analyze
from ..build import compile_graph
from ..weights import WeightsError, compare, read_weights_file
from .graph import ImportedGraph, ImportFailed, check_inferred, to_document
from .weights import carry_weights


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise ImportFailed(f"--input-shape {text!r}: expected integers like 1,3,32,32") from None
    return dims


def _args(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ImportFailed(f"--args is not valid JSON: {exc}") from None


def _finish(
    graph: ImportedGraph, state: dict[str, torch.Tensor] | None, output: str, as_json: bool
) -> int:
    """Validate, check against the original, write the document (and the carried weights)."""
    document = to_document(graph)
    analysis = analyze(document)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    weights_path = None
    unused: list[str] = []
    if analysis.ok:
        check_inferred(analysis, graph)
        if state is not None:
            from safetensors.torch import save_file

            from ..weights import savable

            carried, unused = carry_weights(compile_graph(analysis), graph, state)
            weights_path = out.with_suffix(".safetensors")
            save_file(savable(carried), str(weights_path))
    out.write_text(json.dumps(document, indent=2) + "\n")
    problems = [
        e for e in analysis.error_list if not any(e.node == o.split(":")[0] for o in graph.opaque)
    ]
    totals = analysis.totals() if analysis.ok else None
    summary = {
        "graph": str(out),
        "nodes": len(graph.nodes),
        "params": totals["params"] if totals else None,
        "opaque": graph.opaque,
        "weights": str(weights_path) if weights_path else None,
        "weights_not_carried": unused,
        "errors": [str(e) for e in problems],
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        size = f", {totals['params']:,} params" if totals else ""
        print(f"wrote {out}: {len(graph.nodes)} model nodes{size}")
        if weights_path:
            print(f"wrote {weights_path}: the weights under the generated module's names")
            print(
                "  point its Dataset at your data, then: "
                f"torchloom train {out} --init-weights {weights_path}"
            )
        for item in graph.opaque:
            print(f"warning: opaque node {item}", file=sys.stderr)
        if graph.opaque and state is not None:
            print("warning: weights are not carried while opaque nodes remain", file=sys.stderr)
        for item in unused:
            print(f"warning: weight {item} is not carried (its node is opaque)", file=sys.stderr)
        for e in problems:
            print(f"error: {e}", file=sys.stderr)
    return 1 if problems else 0


def cmd_import_module(args) -> int:
    from .module_loading import instantiate, load_class
    from .torch_module import import_module

    try:
        shape = _shape(args.input_shape)
        model = instantiate(load_class(args.module), _args(args.args))
        state = None
        if args.weights:
            given = read_weights_file(Path(args.weights))
            report = compare(model.state_dict(), given, {})
            if not report.exact:
                raise ImportFailed(
                    f"{args.weights} does not fit {type(model).__name__}: {report.summary()}"
                )
            model.load_state_dict(given)
        graph, original = import_module(model, shape, args.name)
        if args.weights:
            state = original
        return _finish(graph, state, args.output, args.json)
    except (ImportFailed, WeightsError) as exc:
        print(f"torchloom import-module: {exc}", file=sys.stderr)
        return 1


def cmd_import_onnx(args) -> int:
    from .onnx_model import import_onnx

    try:
        graph, state = import_onnx(Path(args.model), args.name)
        return _finish(graph, state, args.output, args.json)
    except (ImportFailed, WeightsError) as exc:
        print(f"torchloom import-onnx: {exc}", file=sys.stderr)
        return 1


def register(sub) -> None:
    p = sub.add_parser(
        "import-module",
        help="trace a PyTorch nn.Module (trusted local code) into a graph document",
    )
    p.add_argument("module", metavar="FILE.py:CLASS", help="the module's file and class name")
    p.add_argument(
        "--input-shape", required=True, metavar="B,...", help="an example input, e.g. 1,3,32,32"
    )
    p.add_argument("--args", metavar="JSON", help="constructor arguments: an object or a list")
    p.add_argument("--weights", metavar="FILE", help="a .pt / .safetensors state_dict to carry")
    p.add_argument("--name", help="the graph's name (default: the class name)")
    p.add_argument("-o", "--output", required=True, metavar="GRAPH.json")
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    p.set_defaults(func=cmd_import_module)

    p = sub.add_parser("import-onnx", help="read an ONNX model (common ops) into a graph document")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--name", help="the graph's name (default: the ONNX graph's name)")
    p.add_argument("-o", "--output", required=True, metavar="GRAPH.json")
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    p.set_defaults(func=cmd_import_onnx)
