"""Where a graph's file params may point when the graph came through the server.

The catalog marks every param that names a file (`Param.file_ref`, see
graph_compiler/catalog/spec.py). On the server a graph names files only by uploaded dataset
ids; the web process turns each id into the stored file's path (server/storage/datasets.py
`resolve_files`) and the worker checks the result again here before any file is opened: every
path-like param of every node must be an absolute path whose real path lies inside the data
dir's datasets folder. Headless `torchloom train` (a trusted command line reading local files)
does not call this.

Errors name the node and the field, never the path or anything read from it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from graph_compiler.catalog import CATALOG

from .errors import DataError


def graph_nodes(document: Any) -> Iterator[tuple[str | None, dict]]:
    """(block name or None, node) for every node of the top-level graph and of every block
    definition; anything that is not a node object is skipped (validation reports it)."""
    if not isinstance(document, Mapping):
        return
    scopes: list[tuple[str | None, Any]] = [(None, document.get("nodes"))]
    blocks = document.get("blocks")
    if isinstance(blocks, Mapping):
        scopes += [
            (str(name), (b or {}).get("nodes"))
            for name, b in blocks.items()
            if isinstance(b, Mapping)
        ]
    for block, nodes in scopes:
        for node in nodes if isinstance(nodes, list) else ():
            if isinstance(node, dict):
                yield block, node


def path_fields(node: Mapping) -> tuple[str, ...]:
    """The names of a node's params that hold a file path (by the catalog)."""
    spec = CATALOG.get(node.get("type")) if isinstance(node.get("type"), str) else None
    return tuple(p.name for p in spec.file_params("path")) if spec is not None else ()


def where(block: str | None, node: Mapping) -> str:
    name = f"node {str(node.get('id'))[:80]!r}"
    return f"{name} in block {block[:80]!r}" if block else name


def inside(value: Any, root: Path) -> bool:
    """`value` is an absolute path whose real path (links followed) lies inside `root`."""
    if not isinstance(value, str) or "\x00" in value or not os.path.isabs(value):
        return False
    try:
        real = Path(os.path.realpath(value))
        base = Path(os.path.realpath(root))
    except (OSError, ValueError):
        return False
    return base in real.parents


def contain_document(document: Any, root: Path) -> None:
    """Raise DataError unless every path-like param of every node is empty or lies inside
    `root` (the data dir's datasets folder)."""
    for block, node in graph_nodes(document):
        params = node.get("params")
        if not isinstance(params, Mapping):
            continue
        for name in path_fields(node):
            value = params.get(name)
            if value in (None, "") or inside(value, root):
                continue
            raise DataError(
                f"{where(block, node)}: {name} names a file outside the server's uploaded "
                "datasets; the server reads uploaded datasets only (upload the file and pick it)"
            )


def without_paths(document: Any) -> Any:
    """A copy of the document with every path-like param emptied: what leaves the server
    (code.zip's graph.json) names uploads by their ids, never by where they are stored."""
    out = copy.deepcopy(document)
    for _, node in graph_nodes(out):
        params = node.get("params")
        if isinstance(params, dict):
            for name in path_fields(node):
                if params.get(name):
                    params[name] = ""
    return out


def shown(message: str, root: Path, names: Mapping[str, str]) -> str:
    """A data error as the user may see it: each stored file named by its upload's display
    name (`names`: stored file name → display name), no server path."""
    for base in dict.fromkeys((str(root), os.path.realpath(root))):
        for filename, name in names.items():
            message = message.replace(os.path.join(base, filename), name)
        message = message.replace(base + os.sep, "").replace(base, "the datasets folder")
    for filename, name in names.items():
        message = message.replace(filename, name)
    return message
