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


def _args(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ImportFailed(f"--args is not valid JSON: {exc}") from None


# Exit codes: 0 imported; 1 not imported (or the graph has errors); OPAQUE_EXIT imported, but
# opaque nodes remain (to rewrite), unless --allow-opaque accepts them.
OPAQUE_EXIT = 3


def _finish(
    graph: ImportedGraph,
    state: dict[str, torch.Tensor] | None,
    output: str,
    as_json: bool,
    allow_opaque: bool = False,
) -> int:
    """Validate, check against the original, write the document (and the carried weights:
    every node's but the opaque ones', also while opaque nodes remain)."""
    document = to_document(graph)
    analysis = analyze(document, model_only=graph.model_only)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    opaque_ids = {o["node"] for o in graph.opaque_nodes}
    problems = [e for e in analysis.error_list if e.node not in opaque_ids]
    weights_path = None
    unused: list[str] = []
    if analysis.ok:
        check_inferred(analysis, graph)
    if state is not None and (analysis.ok or (opaque_ids and analysis.top and not problems)):
        from safetensors.torch import save_file

        from ..weights import savable

        if analysis.ok:
            carried, unused = carry_weights(compile_graph(analysis), graph, state)
        else:  # shapes stop at the first opaque node: names only, checked once it is rewritten
            carried, unused = carry_weights(None, graph, state, analysis.top.scope)
        weights_path = out.with_suffix(".safetensors")
        save_file(savable(carried), str(weights_path))
    out.write_text(json.dumps(document, indent=2) + "\n")
    totals = analysis.totals() if analysis.ok else None
    summary = {
        "graph": str(out),
        "nodes": len(graph.nodes),
        "model_only": graph.model_only,
        "params": totals["params"] if totals else None,
        "opaque": graph.opaque,
        "opaque_nodes": graph.opaque_nodes,
        "weights": str(weights_path) if weights_path else None,
        "weights_not_carried": unused,
        "errors": [str(e) for e in problems],
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _report(graph, out, totals, weights_path, unused, problems, allow_opaque)
    if problems:
        return 1
    return OPAQUE_EXIT if graph.opaque_nodes and not allow_opaque else 0


def _report(graph, out, totals, weights_path, unused, problems, allow_opaque) -> None:
    size = f", {totals['params']:,} params" if totals else ""
    print(f"wrote {out}: {len(graph.nodes)} model nodes{size}")
    if graph.model_only:
        shapes = ", ".join(str(list(s)) for _, _, s in graph.outputs)
        print(
            f"  model only: no obvious loss for its output(s) {shapes}; add a loss, an "
            f"optimizer and a Training node to train it (torchloom validate --model-only "
            f"{out} checks it as it is)"
        )
    if weights_path:
        print(f"wrote {weights_path}: the weights under the generated module's names")
        if not graph.model_only and not graph.opaque_nodes:
            print(
                "  point its Dataset at your data, then: "
                f"torchloom train {out} --init-weights {weights_path}"
            )
    if graph.opaque_nodes:
        verdict = "accepted (--allow-opaque)" if allow_opaque else "rewrite them"
        print(
            f"{len(graph.opaque_nodes)} opaque node(s) without a torchloom equivalent, {verdict}:",
            file=sys.stderr,
        )
    for item, o in zip(graph.opaque, graph.opaque_nodes, strict=True):
        where = f"\n    from: {o['expression']}" if o["expression"] else ""
        print(f"warning: opaque node {item}{where}", file=sys.stderr)
    for item in unused:
        print(f"warning: weight {item} is not carried (its node is opaque)", file=sys.stderr)
    for e in problems:
        print(f"error: {e}", file=sys.stderr)


def cmd_import_module(args) -> int:
    from .module_inputs import parse_inputs
    from .module_loading import instantiate, load_class
    from .torch_module import import_module

    try:
        inputs = parse_inputs(args.input_shape)
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
        graph, original = import_module(model, inputs, args.name)
        if args.weights:
            state = original
        return _finish(graph, state, args.output, args.json, args.allow_opaque)
    except (ImportFailed, WeightsError) as exc:
        print(f"torchloom import-module: {exc}", file=sys.stderr)
        return 1


def cmd_import_onnx(args) -> int:
    from .onnx_model import import_onnx

    try:
        graph, state = import_onnx(Path(args.model), args.name)
        return _finish(graph, state, args.output, args.json, args.allow_opaque)
    except (ImportFailed, WeightsError) as exc:
        print(f"torchloom import-onnx: {exc}", file=sys.stderr)
        return 1


def register(sub) -> None:
    p = sub.add_parser(
        "import-module",
        help="trace a PyTorch nn.Module (trusted local code) into a graph document",
        description="Exit status: 0 imported; 1 not imported, or the graph has errors; "
        f"{OPAQUE_EXIT} imported with opaque nodes left to rewrite (listed with their Python "
        "source; --allow-opaque: 0).",
    )
    p.add_argument("module", metavar="FILE.py:CLASS", help="the module's file and class name")
    p.add_argument(
        "--input-shape",
        required=True,
        action="append",
        metavar="B,...[:DTYPE]",
        help="an example input, batch first, e.g. 1,3,32,32; a dtype after a colon for token "
        "ids (2,20:int64; also int32, bool; default float32); several inputs: repeat the flag "
        "or separate them with ';'",
    )
    p.add_argument("--args", metavar="JSON", help="constructor arguments: an object or a list")
    p.add_argument("--weights", metavar="FILE", help="a .pt / .safetensors state_dict to carry")
    p.add_argument("--name", help="the graph's name (default: the class name)")
    p.add_argument("-o", "--output", required=True, metavar="GRAPH.json")
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    _opaque_flag(p)
    p.set_defaults(func=cmd_import_module)

    p = sub.add_parser(
        "import-onnx",
        help="read an ONNX model (common ops) into a graph document",
        description=f"Exit status: 0 imported; 1 not imported, or the graph has errors; "
        f"{OPAQUE_EXIT} imported with opaque nodes left (--allow-opaque: 0).",
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--name", help="the graph's name (default: the ONNX graph's name)")
    p.add_argument("-o", "--output", required=True, metavar="GRAPH.json")
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    _opaque_flag(p)
    p.set_defaults(func=cmd_import_onnx)


def _opaque_flag(p) -> None:
    p.add_argument(
        "--allow-opaque",
        action="store_true",
        help=f"exit 0 although opaque nodes remain (without it: exit {OPAQUE_EXIT}, the graph "
        "and the other nodes' weights written, each opaque node listed with its source)",
    )
