"""Generated graphs and build facts for the editor's browser tests and bench/editor_perf.py."""

from __future__ import annotations

import gzip
import re

from server.app import FRONTEND_DIST
from tests import helpers


def chain(n_layers: int) -> dict:
    """Digits → n_layers alternating Linear(64) / ReLU → loss → Adam, laid out 25 to a row."""
    layers = [
        (f"n{i}", "Linear", {"out_features": 64}) if i % 2 == 0 else (f"n{i}", "ReLU", {})
        for i in range(n_layers)
    ]
    doc = helpers.chain("digits", layers, with_training=False, name=f"Chain {n_layers + 3}")
    grid = {f"n{i}": [220 * ((i + 1) % 25), 160 * ((i + 1) // 25)] for i in range(n_layers)}
    grid.update(data=[0, 0], loss=[0, -200], opt=[220, -200])
    for node in doc["nodes"]:
        node["position"] = grid[node["id"]]
    return doc


def first_load_gzip() -> int:
    html = (FRONTEND_DIST / "index.html").read_text()
    total = len(gzip.compress(html.encode()))
    for ref in re.findall(r'(?:src|href)="/assets/([^"]+\.(?:js|css))"', html):
        total += len(gzip.compress((FRONTEND_DIST / "assets" / ref).read_bytes()))
    return total
