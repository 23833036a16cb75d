"""Accuracy of examples/text_classifier.json on the shipped "reviews" source (issue 13's target:
≥ 90 %), trained by the engine on this machine's CPU; prints the figure and the time it took.

    PYTHONPATH=. .venv/bin/python bench/text_classifier.py [--epochs N]

Also trains a bag-of-characters baseline (Embedding → mean over the real positions → Linear,
no order) to show the task needs order: it should stay far below the GRU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from server.engine.trainer import Trainer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "text_classifier.json"


def train(doc: dict, epochs: int) -> tuple[float, float]:
    start = time.perf_counter()
    result = Trainer(doc, overrides={"epochs": epochs}).run()
    if result.status != "finished":
        raise SystemExit(f"training failed: {result.reason}")
    return result.history[-1]["val_accuracy"], time.perf_counter() - start


def bag_of_characters(doc: dict) -> dict:
    """The example with the GRU taken out and a mean over the real positions instead."""
    doc = json.loads(json.dumps(doc))
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "gru"]
    for n in doc["nodes"]:
        if n["id"] == "pool":
            n["params"] = {"mode": "mean"}
    for e in doc["edges"]:
        if e["target"] == "gru":
            e["target"] = "pool"
    doc["edges"] = [e for e in doc["edges"] if e["source"] != "gru"]
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=None, help="default: the example's")
    args = parser.parse_args()
    doc = json.loads(EXAMPLE.read_text())
    training = next(n for n in doc["nodes"] if n["type"] == "Training")
    epochs = args.epochs or training["params"]["epochs"]
    acc, seconds = train(doc, epochs)
    print(f"text_classifier: val_accuracy {acc:.4f} after {epochs} epochs ({seconds:.0f} s)")
    base, seconds = train(bag_of_characters(doc), epochs)
    print(f"bag of characters (no order): val_accuracy {base:.4f} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
