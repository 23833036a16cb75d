"""A finished run's folder made without training (model.py, graph.json, preprocess.json and
weights), registered in the app's database: for export tests that need a run, not a trained one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

from graph_compiler import compile_graph
from graph_compiler.build import CompiledGraph
from graph_compiler.weights import savable
from server.engine.data import Normalizer, load_data, split
from server.engine.trainer import prepare_document
from server.storage import runs as store


def fabricated_run(
    app,
    run_id: str,
    document: dict,
    *,
    allow_custom_code: bool = False,
    adjust: Callable[[torch.nn.Module], None] | None = None,
) -> tuple[Path, CompiledGraph, torch.nn.Module]:
    """The run's folder, its compiled graph and its model (seeded initial weights, then
    `adjust(model)` if given, e.g. to perturb batch-norm statistics)."""
    services = app.extensions["torchloom"]
    raw = prepare_document(document)
    compiled = compile_graph(raw, allow_custom_code=allow_custom_code)
    folder = services.data.run_dir(run_id)
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(compiled.source)
    (folder / "graph.json").write_text(json.dumps(raw))
    loaded = load_data(next(n for n in raw["nodes"] if n["type"] == "Dataset")["params"])
    settings = compiled.analysis.settings
    (x_train, _), _ = split(loaded, settings["val_split"], settings["seed"])
    norm = Normalizer.fit(x_train).state_dict()
    preprocess = {
        "normalizer": {k: v.tolist() if torch.is_tensor(v) else v for k, v in norm.items()},
        "target_scaler": None,
        "class_names": loaded.class_names,
        "task": loaded.task,
    }
    (folder / "preprocess.json").write_text(json.dumps(preprocess))
    model = compiled.instantiate(seed=0)
    if adjust is not None:
        adjust(model)
    save_file(savable(model.state_dict()), str(folder / "model.safetensors"))  # tied weights
    store.create(services.db, run_id, "project", 1, raw, {}, str(folder))
    store.update_run(services.db, run_id, status="finished")
    return folder, compiled, model
