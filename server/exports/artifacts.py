"""A finished (or stopped) run's folder read back: its code, graph, preprocessing and weights.

Everything is read from the run's own folder, by fixed names (checkpoints by the names the
trainer gave them, each path checked to stay inside the folder). Weights come from
model.safetensors (a finished run) or from the latest checkpoint's "model" entry, read with
`torch.load(weights_only=True)` only (server.engine.checkpoint.load_checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graph_compiler import analyze
from graph_compiler.analysis import Analysis
from graph_compiler.codegen import ModelInterface, model_class_name, model_interface
from graph_compiler.plan import LossWiring, loss_wiring

from ..engine.metrics import CLASSIFICATION_LOSSES, REGRESSION_LOSSES  # noqa: F401 (re-export)
from ..errors import ApiError
from ..storage.files import contained, safe_download_name

EXPORTABLE = ("finished", "stopped")


LossInfo = LossWiring  # the export reads the same description of each loss


@dataclass
class RunFiles:
    """What a run left in its folder, read and checked (no model built yet)."""

    run_id: str
    status: str
    folder: Path
    source: str  # model.py, exactly as trained
    document: dict  # graph.json: the document as it ran (overrides and file shapes included)
    preprocess: dict
    weights: Path  # model.safetensors or a checkpoint
    weights_kind: str  # "safetensors" | "checkpoint"

    @property
    def name(self) -> str:
        return str(self.document.get("name") or "model")

    @property
    def fingerprint(self) -> dict:
        """Identifies the weights and code an export was made from (cache keys)."""
        stat = self.weights.stat()
        return {
            "weights": self.weights.name,
            "weights_size": stat.st_size,
            "weights_mtime_ns": stat.st_mtime_ns,
            "model_sha1": hashlib.sha1(self.source.encode()).hexdigest(),
        }

    def download_name(self, suffix: str) -> str:
        return safe_download_name(f"{self.name}-{self.run_id[:8]}", suffix)


def run_files(run: dict, folder: Path) -> RunFiles:
    """The run's files, or 409 saying why there is nothing to export yet."""
    run_id, status = run["id"], run["status"]
    if status not in EXPORTABLE:
        raise ApiError(
            409,
            "run_not_exportable",
            f"run {run_id} is {status}: exports need a finished or stopped run with weights",
        )
    texts = {}
    for name in ("model.py", "graph.json", "preprocess.json"):
        path = contained(folder, name)
        if not path.is_file():
            raise ApiError(
                409,
                "run_incomplete",
                f"run {run_id} has no {name} in its folder (nothing to export)",
            )
        texts[name] = path.read_text(encoding="utf-8")
    weights, kind = _weights_path(run, folder)
    return RunFiles(
        run_id,
        status,
        folder,
        texts["model.py"],
        json.loads(texts["graph.json"]),
        json.loads(texts["preprocess.json"]),
        weights,
        kind,
    )


def _weights_path(run: dict, folder: Path) -> tuple[Path, str]:
    if run["status"] == "finished":
        final = contained(folder, "model.safetensors")
        if final.is_file():
            return final, "safetensors"
    directory = contained(folder, "checkpoints")
    found = []
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.name.endswith(".pt") and entry.is_file():
                found.append(contained(folder, "checkpoints", entry.name))
    if not found:
        raise ApiError(
            409,
            "no_weights",
            f"run {run['id']} ({run['status']}) has no saved weights: neither model.safetensors "
            "nor a checkpoint",
        )
    recorded = Path(run["checkpoint"]).name if run.get("checkpoint") else None
    for path in found:
        if path.name == recorded:
            return path, "checkpoint"
    return max(found, key=lambda p: p.stat().st_mtime_ns), "checkpoint"


def load_state_dict(files: RunFiles) -> dict[str, torch.Tensor]:
    """The model's state_dict on the CPU (keys as in model.py)."""
    if files.weights_kind == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(files.weights), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ApiError(
                409, "bad_weights", f"{files.weights.name} cannot be read: {exc}"
            ) from None
    from server.engine.checkpoint import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(files.weights)  # torch.load(weights_only=True)
    except CheckpointError as exc:
        raise ApiError(409, "bad_checkpoint", str(exc)) from None
    model = state.get("model")
    if not isinstance(model, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()
    ):
        raise ApiError(409, "bad_checkpoint", f"{files.weights.name} holds no model state_dict")
    return model


# --- the model, built from the run's own model.py ---------------------------------------------


@dataclass
class RunModel:
    files: RunFiles
    analysis: Analysis
    interface: ModelInterface
    class_name: str
    module: Any  # the executed model.py
    model: nn.Module  # eval mode, CPU, the run's weights
    state: dict[str, torch.Tensor]
    losses: list[LossInfo]
    _validation: tuple | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def settings(self) -> dict:
        return self.analysis.settings

    @property
    def x_shape(self) -> tuple[int, ...]:
        return tuple(self.analysis.data.x_shape)

    @property
    def x_dtype(self) -> torch.dtype:
        return torch.int64 if self.analysis.data.x_dtype == "int64" else torch.float32

    def normalizer(self):
        from server.engine.data import Normalizer

        return Normalizer.from_state_dict(self.files.preprocess["normalizer"])

    def target_scaler(self):
        from server.engine.data import TargetScaler

        state = self.files.preprocess.get("target_scaler")
        return TargetScaler.from_state_dict(state) if state else None

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        args = [batch[name] for name in self.interface.inputs]
        with torch.inference_mode():
            out = self.model(*args)
        return out if isinstance(out, tuple) else (out,)

    def validation(self, datasets_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """The run's validation split, rebuilt as the engine built it (raw, not normalized)."""
        with self._lock:
            if self._validation is None:
                self._validation = validation_split(
                    self.files.document, self.settings, datasets_root
                )
            return self._validation


def stored_dataset_params(document: dict) -> dict | None:
    """The run's Dataset node params as stored in its document (no catalog defaults filled
    in: load_data fills them); None when the graph has no Dataset node."""
    node = next((n for n in document.get("nodes", []) if n.get("type") == "Dataset"), None)
    return dict(node.get("params") or {}) if node is not None else None


def load_run_data(document: dict, datasets_root: Path):
    """load_data for the run's Dataset node; every file it names (path, val_path, any
    path-like param) must lie in the datasets folder, checked before anything is opened."""
    from server.engine.data import DataError, load_data
    from server.engine.data.contain import contain_document

    params = stored_dataset_params(document)
    if params is None:
        raise ApiError(409, "no_dataset", "the run's graph has no Dataset node")
    try:
        contain_document(document, datasets_root)
    except DataError as exc:
        raise ApiError(
            409, "data_unavailable", f"the run's data is not readable here: {exc}"
        ) from None
    try:
        return load_data(params)
    except DataError as exc:
        raise ApiError(409, "data_unavailable", f"the run's data cannot be read: {exc}") from None


def validation_split(document: dict, settings: dict, datasets_root: Path):
    from server.engine.data import split

    loaded = load_run_data(document, datasets_root)
    _, (x_va, y_va) = split(loaded, settings["val_split"], settings["seed"])
    return x_va, y_va


def loss_infos(analysis: Analysis, interface: ModelInterface) -> list[LossInfo]:
    """The loss terms the optimizer sums, wired exactly as build_plan wires them."""
    return loss_wiring(analysis, interface)


def build_run_model(files: RunFiles, *, allow_custom_code: bool) -> RunModel:
    from graph_compiler.build import load_source

    analysis = analyze(files.document, allow_custom_code=allow_custom_code)
    if not analysis.ok:
        custom = [
            n.get("id")
            for n in files.document.get("nodes", [])
            if n.get("type") in ("CustomLayer", "CustomLoss")
        ]
        if custom and not allow_custom_code:
            raise ApiError(
                422,
                "custom_code_disabled",
                f"the run's graph has custom code ({', '.join(map(str, custom))}) and this server "
                "runs no custom code",
            )
        raise ApiError(
            422,
            "invalid_graph",
            "the run's graph no longer analyzes",
            [e.to_dict() for e in analysis.error_list],
        )
    interface = model_interface(analysis)
    class_name = model_class_name(analysis)
    try:
        module = load_source(files.source)
        cls = getattr(module, class_name)
    except Exception as exc:
        raise ApiError(
            422, "model_code_error", f"model.py cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    state = load_state_dict(files)
    with torch.device("cpu"):
        model = cls()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ApiError(
            409,
            "weights_mismatch",
            f"the run's weights do not fit its model.py: {str(exc).splitlines()[0]}",
        ) from None
    model.eval()
    return RunModel(
        files,
        analysis,
        interface,
        class_name,
        module,
        model,
        state,
        loss_infos(analysis, interface),
    )


class ModelCache:
    """A few loaded run models (LRU), keyed by run and the identity of its weights file."""

    def __init__(self, size: int = 4):
        self.size = size
        self._items: OrderedDict[tuple, RunModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, files: RunFiles, *, allow_custom_code: bool) -> RunModel:
        key = (
            str(files.folder),
            files.run_id,
            allow_custom_code,
            tuple(sorted(files.fingerprint.items())),
        )
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        built = build_run_model(files, allow_custom_code=allow_custom_code)
        with self._lock:
            self._items[key] = built
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return built

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
