"""What code.zip's files read from a run beyond its RunFiles: the names of its initial weights,
the scikit-learn datasets train.py loads itself, the Dataset node's parameters, the CPU thread
count it trained with."""

from __future__ import annotations

import json

from ..engine.trainer import ENVIRONMENT_FILE
from .artifacts import RunFiles, stored_dataset_params

RUN_INITIAL = "initial.safetensors"  # a warm-started run's initial weights, in its folder
INITIAL_FILE = "initial_state_dict.pt"  # ... and in code.zip

SKLEARN = {  # built-in source → (loader, x reshape, task)
    "digits": ("load_digits", None, "classification"),
    "digits_images": ("load_digits", (-1, 1, 8, 8), "classification"),
    "iris": ("load_iris", None, "classification"),
    "wine": ("load_wine", None, "classification"),
    "breast_cancer": ("load_breast_cancer", None, "classification"),
    "diabetes": ("load_diabetes", None, "regression"),
}


def dataset_params(document: dict) -> dict:
    """The Dataset node's parameters, as the run's graph.json has them ({} without one)."""
    return stored_dataset_params(document) or {}


def recorded_threads(files: RunFiles) -> int | None:
    """The CPU thread count the run trained with (None for a run from before it was kept)."""
    try:
        environment = json.loads((files.folder / ENVIRONMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    threads = environment.get("cpu_threads") if isinstance(environment, dict) else None
    return threads if isinstance(threads, int) and threads >= 1 else None
