"""Generated graphs and build facts for the editor's browser tests and bench/editor_perf.py."""

from __future__ import annotations

import gzip
import re

from server.app import FRONTEND_DIST


def chain(n_layers: int) -> dict:
    nodes = [{"id": "data", "type": "Dataset", "params": {"source": "digits"}, "position": [0, 0]}]
    edges = []
    prev = ("data", "x")
    for i in range(n_layers):
        kind = "Linear" if i % 2 == 0 else "ReLU"
        node_id = f"n{i}"
        nodes.append(
            {
                "id": node_id,
                "type": kind,
                "params": {"out_features": 64} if kind == "Linear" else {},
                "position": [220 * ((i + 1) % 25), 160 * ((i + 1) // 25)],
            }
        )
        edges.append({"source": prev[0], "source_port": prev[1], "target": node_id})
        prev = (node_id, "out")
    nodes += [
        {"id": "loss", "type": "CrossEntropyLoss", "params": {}, "position": [0, -200]},
        {"id": "opt", "type": "Adam", "params": {}, "position": [220, -200]},
    ]
    edges += [
        {"source": prev[0], "target": "loss", "target_port": "input"},
        {"source": "data", "source_port": "y", "target": "loss", "target_port": "target"},
        {"source": "loss", "source_port": "loss", "target": "opt", "target_port": "loss"},
    ]
    return {
        "format": "torchloom.graph/1",
        "name": f"Chain {len(nodes)}",
        "nodes": nodes,
        "edges": edges,
    }


def first_load_gzip() -> int:
    html = (FRONTEND_DIST / "index.html").read_text()
    total = len(gzip.compress(html.encode()))
    for ref in re.findall(r'(?:src|href)="/assets/([^"]+\.(?:js|css))"', html):
        total += len(gzip.compress((FRONTEND_DIST / "assets" / ref).read_bytes()))
    return total
