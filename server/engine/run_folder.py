"""The files a run writes into its folder besides checkpoints and events: the static ones at
the start (model.py, graph.json, preprocess.json, environment.json, and tokenizer.json for text
data) and the final weights."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

# What the run ran on, in its folder: code.zip's train.py takes the CPU thread count from it,
# because float sums split over another number of threads round differently and the runs drift.
ENVIRONMENT_FILE = "environment.json"
# The Tokenizer that made the run's token ids (Tokenizer.save): generation and sample.py
# turn prompts into ids and ids into text with it.
TOKENIZER_FILE = "tokenizer.json"


def write_static_files(
    out_dir: Path,
    *,
    source: str,
    document: dict,
    normalizer,
    target_scaler,
    class_names,
    task: str,
    device: torch.device,
    tokenizer=None,
) -> None:
    """What the run is, written before its first step: the generated model, the document as
    it runs, the preprocessing a prediction must repeat (with the tokenizer, for text data),
    and the environment it trains in."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.py").write_text(source)
    (out_dir / "graph.json").write_text(json.dumps(document, indent=2) + "\n")
    preprocess = {
        "normalizer": _jsonable(normalizer.state_dict()),
        "target_scaler": _jsonable(target_scaler.state_dict()) if target_scaler else None,
        "class_names": class_names,
        "task": task,
    }
    (out_dir / "preprocess.json").write_text(json.dumps(preprocess, indent=2) + "\n")
    environment = {
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
        "torch": torch.__version__,
    }
    (out_dir / ENVIRONMENT_FILE).write_text(json.dumps(environment, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save(out_dir / TOKENIZER_FILE)


def write_final_weights(out_dir: Path, model: torch.nn.Module) -> None:
    """The finished model's weights, as safetensors (loadable without pickle)."""
    from safetensors.torch import save_file

    from graph_compiler.weights import savable

    save_file(savable(model.state_dict()), str(out_dir / "model.safetensors"))


def _jsonable(state: Mapping[str, Any]) -> dict:
    return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
