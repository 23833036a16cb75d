"""`torchloom` command line: validate, shapes, compile, catalog, schema (and more as they land)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

from .analysis import Analysis, analyze
from .catalog import catalog_json
from .document import json_schema
from .errors import GraphCompileError
from .summary import summary_rows, summary_table


def _load(path: str, allow_custom_code: bool, model_only: bool = False) -> Analysis:
    try:
        text = Path(path).read_bytes() if path != "-" else sys.stdin.buffer.read()
    except OSError as exc:
        raise SystemExit(f"torchloom: cannot read {path}: {exc.strerror}") from None
    return analyze(text, allow_custom_code=allow_custom_code, model_only=model_only)


def _print_problems(a: Analysis, path: str, stream=None) -> None:
    stream = stream or sys.stdout
    for e in a.errors:
        where = f"{e.node}" + (f".{e.field}" if e.field else "") if e.node else (e.field or "-")
        block = f"[block {e.block}] " if e.block else ""
        print(f"{path}: {e.severity}: {block}{e.code} at {where}: {e.message}", file=stream)


def cmd_validate(args) -> int:
    status = 0
    for path in args.graphs:
        a = _load(path, args.allow_custom_code, args.model_only)
        if args.json:
            print(
                json.dumps(
                    {"file": path, **a.to_json()}, indent=None if len(args.graphs) > 1 else 2
                )
            )
        else:
            _print_problems(a, path)
            if a.ok:
                t = a.totals()
                warnings = sum(e.severity == "warning" for e in a.errors)
                print(
                    f"{path}: ok — {t['params']:,} params, {len(a.top.scope.nodes)} nodes"
                    + (f", {warnings} warning(s)" if warnings else "")
                )
        status |= 0 if a.ok else 1
    return status


def cmd_shapes(args) -> int:
    a = _load(args.graph, args.allow_custom_code)
    if args.json:
        print(json.dumps({"rows": summary_rows(a), "totals": a.totals(), **a.to_json()}, indent=2))
        return 0 if a.ok else 1
    _print_problems(a, args.graph, sys.stderr)
    if a.top is not None:
        print(summary_table(a))
    return 0 if a.ok else 1


def cmd_compile(args) -> int:
    from .build import compile_graph

    a = _load(args.graph, args.allow_custom_code)
    try:
        compiled = compile_graph(a)
    except GraphCompileError:
        _print_problems(a, args.graph, sys.stderr)
        return 1
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.py").write_text(compiled.source)
    (out / "graph.json").write_text(json.dumps(a.document.to_json_dict(), indent=2) + "\n")
    if args.json:
        print(
            json.dumps({"model": str(out / "model.py"), "class": compiled.class_name, **a.totals()})
        )
    else:
        print(
            f"wrote {out / 'model.py'} (class {compiled.class_name}, "
            f"{a.totals()['params']:,} params)"
        )
    return 0


def cmd_catalog(args) -> int:
    data = catalog_json()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for category in data["categories"]:
        nodes = [n for n in data["nodes"] if n["category"] == category]
        if nodes:
            print(f"{category}:")
            for n in nodes:
                print(f"  {n['type']:<26} {n['doc']}")
    print(f"{len(data['nodes'])} node types")
    return 0


def cmd_schema(args) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_examples(args) -> int:
    """Validate and compile every example; print each one's summary (the README's run step)."""
    root = Path(args.directory)
    paths = sorted(root.glob("*.json"))
    if not paths:
        print(f"no examples in {root}", file=sys.stderr)
        return 1
    failed = 0
    for path in paths:
        a = _load(str(path), False)
        print(f"\n=== {path.name}: {a.document.name if a.document else '?'} ===")
        _print_problems(a, path.name)
        if a.top is not None and a.ok:
            print(summary_table(a))
        failed += not a.ok
    print(f"\n{len(paths) - failed}/{len(paths)} examples valid")
    return 1 if failed else 0


SIGPIPE_STATUS = 128 + 13  # what the shell reports for cat or grep cut off by `| head`


def pipe_safe(func):
    """A command that stops quietly when the reader of its output goes away (`… | head`)."""

    @functools.wraps(func)
    def run(args) -> int:
        try:
            status = func(args)
            sys.stdout.flush()  # a broken pipe shows here, not in the interpreter's exit flush
            return status
        except BrokenPipeError:
            # stdout stays broken: point it at /dev/null so the exit flush has nowhere to fail
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return SIGPIPE_STATUS

    return run


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    """The parser with the compiler's commands; server.cli adds train (and serve) to it."""
    parser = argparse.ArgumentParser(prog="torchloom", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def graph_cmd(name: str, help_: str, func, multi: bool = False):
        p = sub.add_parser(name, help=help_)
        if multi:
            p.add_argument(
                "graphs", nargs="+", metavar="GRAPH", help="graph document(s), - for stdin"
            )
        else:
            p.add_argument("graph", metavar="GRAPH", help="graph document (.json), - for stdin")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument(
            "--allow-custom-code",
            action="store_true",
            help="execute CustomLayer/CustomLoss code (trusted graphs only)",
        )
        p.set_defaults(func=func)
        return p

    v = graph_cmd("validate", "check a graph; exit 1 on errors", cmd_validate, multi=True)
    v.add_argument(
        "--model-only",
        action="store_true",
        help="check the model alone: no loss or optimizer required (an imported model whose "
        "output has no obvious loss)",
    )
    graph_cmd("shapes", "summary table: output shapes, params, FLOPs", cmd_shapes)
    c = graph_cmd("compile", "write model.py for a graph", cmd_compile)
    c.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p = sub.add_parser("catalog", help="list node types")
    p.add_argument("--json", action="store_true", help="the full catalog as JSON")
    p.set_defaults(func=cmd_catalog)
    p = sub.add_parser("schema", help="JSON Schema of the graph document")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("examples", help="validate and summarize every example graph")
    p.add_argument("directory", nargs="?", default=str(Path(__file__).parent.parent / "examples"))
    p.set_defaults(func=cmd_examples)
    from .importers.commands import register as register_importers

    register_importers(sub)  # import-module, import-onnx
    for command in sub.choices.values():
        command.set_defaults(func=pipe_safe(command.get_default("func")))
    return parser, sub


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
