"""A training run: data, plan, the epoch loop, validation, checkpoints, events.

Per epoch: model.train(), optimizer.zero_grad(set_to_none=True), forward under the chosen
precision, loss, backward, optional clipping, step, the scheduler at its interval; then
validation in model.eval() under torch.inference_mode(). Losses stay on the device and are read
in batches, so a step never waits for the host just to report.
"""

from __future__ import annotations

import gc
import json
import math
import resource
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from graph_compiler import GraphCompileError, analyze, compile_graph
from graph_compiler.catalog import CATALOG
from graph_compiler.custom import has_custom_code
from graph_compiler.document import parse_document
from graph_compiler.plan import TrainingPlan, build_plan
from graph_compiler.training import steps_per_epoch

from .batching import EpochOrder, Feeder
from .checkpoint import (
    CheckpointError,
    CheckpointQuota,
    QuotaExceeded,
    best_kept,
    better,
    load_checkpoint,
    monitored,
    prune,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .device import Placement, SetupError, place
from .diskspace import is_disk_full, write_error_reason
from .distributed import DistContext
from .events import EventBus
from .metrics import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, TermMetrics
from .steps import GraphedStep, StepContext, cuda_graph_blockers, eager_step

OVERRIDABLE = (
    "epochs",
    "batch_size",
    "device",
    "precision",
    "seed",
    "fast_path",
    "compile",
    "shuffle",
    "val_split",
    "grad_clip",
    "grad_accumulation",
    "checkpoint_every",
    "keep_checkpoints",
)
RESIDENT_FRACTION = 0.4  # of free GPU memory that the fast path may fill with the dataset
# how the run starts, not Training params: a weights file to start from (a path, relative to
# the run folder) and whether only its matching tensors are loaded (graph_compiler.weights)
RUN_OPTIONS = ("init_weights", "init_partial")


CONSUMER_FAILED = "recording the run's events failed"
# What the run ran on, in its folder: code.zip's train.py takes the CPU thread count from it,
# because float sums split over another number of threads round differently and the runs drift.
ENVIRONMENT_FILE = "environment.json"


class RunFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class RunResult:
    run_id: str
    status: str  # finished | failed | stopped
    reason: str = ""
    epochs_done: int = 0
    steps_done: int = 0
    history: list[dict] = field(default_factory=list)  # epoch events' data
    final: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    out_dir: str | None = None


def prepare_document(
    document: Any,
    overrides: Mapping[str, Any] | None = None,
    file_shapes: Mapping[str, Any] | None = None,
) -> dict:
    """The document as it will run: overrides put into the Training node (added if missing),
    a data file's shapes put into the Dataset node."""
    doc, problems = parse_document(document)
    if doc is None:
        raise RunFailed("invalid_graph", "; ".join(str(p) for p in problems))
    raw = doc.to_json_dict()
    nodes = raw["nodes"]
    training = next((n for n in nodes if n["type"] == "Training"), None)
    clean = {k: v for k, v in (overrides or {}).items() if v is not None and k not in RUN_OPTIONS}
    unknown = set(clean) - set(OVERRIDABLE)
    if unknown:
        raise RunFailed(
            "invalid_override",
            f"cannot override {', '.join(sorted(unknown))}; overridable: {', '.join(OVERRIDABLE)}",
        )
    if clean:
        if training is None:
            training = {"id": "training", "type": "Training", "params": {}, "position": [0, 0]}
            nodes.append(training)
        training["params"] = {**training["params"], **clean}
    if file_shapes:
        data = next(n for n in nodes if n["type"] == "Dataset")
        data["params"] = {**data["params"], **file_shapes}
    return raw


def _dataset_params_with_defaults(raw: dict) -> dict | None:
    """The Dataset node's params completed with the catalog's defaults: what load_data reads
    (None: the graph has no Dataset node). Not the params as stored in the document."""
    node = next((n for n in raw["nodes"] if n["type"] == "Dataset"), None)
    if node is None:
        return None
    spec = CATALOG["Dataset"]
    params = {p.name: p.check(p.default)[0] for p in spec.params if p.default is not None}
    params.update(node["params"])
    return params


class Trainer:
    def __init__(
        self,
        document: Any,
        *,
        run_id: str | None = None,
        out_dir: Path | str | None = None,
        overrides: Mapping[str, Any] | None = None,
        resume: Path | str | None = None,
        allow_custom_code: bool = False,
        base_dir: Path | None = None,
        data_root: Path | None = None,  # server runs: every file param must lie inside it
        data_names: Mapping[str, str] | None = None,  # server runs: stored file → shown name
        cuda_graphs: str = "auto",  # auto | on | off
        dist: DistContext | None = None,
        flush_seconds: float = 0.25,
        flush_steps: int = 256,
        stop_at_epoch: int | None = None,  # stop (resumably) after this many epochs: tests, CLI
        start_seq: int = 0,  # a resumed run continues its event sequence
        checkpoint_quota: CheckpointQuota | None = None,  # the server's budget for run folders
    ):
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.document = document
        self.overrides = dict(overrides or {})
        self.out_dir = Path(out_dir) if out_dir else None
        self.resume_path = Path(resume) if resume else None
        self.allow_custom_code = allow_custom_code
        self.base_dir = base_dir
        self.data_root = Path(data_root) if data_root else None
        self.data_names = dict(data_names or {})
        self.cuda_graphs = cuda_graphs
        self.dist = dist or DistContext.single()
        self.flush_seconds, self.flush_steps = flush_seconds, flush_steps
        if self.dist.world > 1:  # ranks must all-reduce at the same steps: flush by count only
            self.flush_seconds = float("inf")
        self.stop_at_epoch = stop_at_epoch
        self.events = EventBus(self.run_id, start_seq=start_seq)
        self._stop = threading.Event()
        self.plan: TrainingPlan | None = None
        self.history: list[dict] = []
        self.checkpoint_quota = checkpoint_quota
        self._written: list[Path] = []  # this attempt's checkpoints, in the order written
        self._best: tuple[tuple[str, float, bool], Path] | None = None  # kept whatever its age
        # progress: a resume (_restore) starts them where its checkpoint left off
        self.epoch = 0
        self.global_step = 0
        self.resume_position = 0  # batches of the current epoch already trained
        self.latest_checkpoint: str | None = None
        # what _setup() builds from the document, before the first step; None until then
        self.raw_document: dict | None = None
        self.settings: dict[str, Any] = {}
        self.placement: Placement | None = None
        self.loaded = None  # the data as loaded (Loaded)
        self.normalizer = None
        self.target_scaler = None
        self.n_train = self.n_val = 0
        self.source: str | None = None  # the generated model.py
        self.train_feed: Feeder | None = None
        self.val_feed: Feeder | None = None
        self.order: EpochOrder | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.step_ctx: StepContext | None = None
        self.step_mode = ""
        self.step_fn = None  # eager_step(...) or a GraphedStep
        self.metric_terms: list[tuple[int, TermMetrics]] = []

    # --- control -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop after the current optimizer step, leaving a resumable checkpoint."""
        self._stop.set()

    def log(self, message: str, level: str = "info") -> None:
        self.events.emit("log", level=level, message=message)

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = time.time()
        result = RunResult(
            self.run_id, "failed", out_dir=str(self.out_dir) if self.out_dir else None
        )
        try:
            self._setup()
            # Everything built so far (torch, the model, the data) lives for the whole run:
            # move it out of the garbage collector's view, or each full collection (~0.1 s
            # with torch loaded) stalls a step at random.
            gc.collect()
            gc.freeze()
            try:
                status = self._train(result)
            finally:
                gc.unfreeze()
            # a run is only finished (or stopped) once every consumer has its record of it
            self.events.flush()
            self._check_consumers()
            result.status = status
        except RunFailed as exc:
            result.reason = str(exc)
            self.events.emit(
                "failed",
                code=exc.code,
                reason=str(exc),
                epochs_done=self.epoch,
                steps_done=self.global_step,
            )
        except torch.cuda.OutOfMemoryError as exc:
            result.reason = (
                f"out of memory on {self.placement.device} with batch size "
                f"{self.settings['batch_size']}: {str(exc).splitlines()[0]}"
            )
            self.events.emit(
                "failed",
                code="out_of_memory",
                reason=result.reason,
                batch_size=self.settings["batch_size"],
            )
        except Exception as exc:  # reported, with the trace in the log, never lost
            if is_disk_full(exc):
                # a full disk while writing the run folder: the run fails saying so, and its
                # earlier checkpoints stay, so it resumes once space is freed
                result.reason = write_error_reason(exc, "writing the run folder")
                self.events.emit("failed", code="disk_full", reason=result.reason)
            else:
                result.reason = f"{type(exc).__name__}: {exc}"
                self.log(traceback.format_exc(), "error")
                self.events.emit("failed", code="internal_error", reason=result.reason)
        result.history = self.history
        result.epochs_done = self.epoch
        result.steps_done = self.global_step
        result.checkpoint = self.latest_checkpoint
        if result.status == "finished":
            result.final = dict(self.history[-1]) if self.history else {}
            self.events.emit(
                "finished",
                duration=time.time() - started,
                epochs=result.epochs_done,
                steps=result.steps_done,
                final=result.final,
                checkpoint=result.checkpoint,
            )
        self.events.close()
        if self.events.failure is not None and result.status != "failed":
            # the terminal event itself could not be recorded: the record ends before it
            result.status = "failed"
            result.reason = f"{CONSUMER_FAILED}: {self.events.failure}"
        return result

    def _check_consumers(self) -> None:
        """A consumer of the events (the run folder's writer, the server relay) failed: the
        run's record is incomplete, so the run fails with that reason rather than go on."""
        if self.events.failure is not None:
            raise RunFailed("event_consumer_failed", f"{CONSUMER_FAILED}: {self.events.failure}")

    # --- setup -------------------------------------------------------------------------------

    def _setup(self) -> None:
        from .data import DataError, Normalizer, TargetScaler, file_shapes, load_data, split
        from .data.contain import contain_document, shown

        raw = prepare_document(self.document, self.overrides)
        data_params = _dataset_params_with_defaults(raw)
        if data_params is None:
            raise RunFailed("invalid_graph", "the graph has no Dataset node")
        try:
            if self.data_root is not None:  # before any file is opened
                contain_document(raw, self.data_root)
            if data_params["source"] == "file":
                shapes = file_shapes(data_params, base_dir=self.base_dir)
                raw = prepare_document(raw, None, shapes)
                data_params = _dataset_params_with_defaults(raw)
            loaded = load_data(data_params, base_dir=self.base_dir)
        except DataError as exc:
            reason = str(exc)
            if self.data_root is not None:  # the upload's name, never a server path
                reason = shown(reason, self.data_root, self.data_names)
            raise RunFailed("data_error", reason) from None
        analysis = analyze(raw, allow_custom_code=self.allow_custom_code)
        if not analysis.ok:
            msgs = "; ".join(str(e) for e in analysis.error_list[:5])
            raise RunFailed("invalid_graph", f"the graph has errors: {msgs}")
        self.raw_document = raw
        self.settings = dict(analysis.settings)
        s = self.settings
        try:
            self.placement = place(s["device"], s["precision"], self.dist.local_rank)
        except SetupError as exc:
            raise RunFailed("device_error", str(exc)) from None
        device = self.placement.device

        (x_tr, y_tr), (x_va, y_va) = split(loaded, s["val_split"], s["seed"])
        self.normalizer = Normalizer.fit(x_tr)
        x_tr, x_va = self.normalizer.apply(x_tr), self.normalizer.apply(x_va)
        self.target_scaler = None
        if loaded.task == "regression" and y_tr.is_floating_point():
            self.target_scaler = TargetScaler.fit(y_tr)
            y_tr, y_va = self.target_scaler.apply(y_tr), self.target_scaler.apply(y_va)
        self.n_train, self.n_val = len(x_tr), len(x_va)

        batch = s["batch_size"]
        steps = steps_per_epoch(self.n_train, batch, s["grad_accumulation"])
        try:
            compiled = compile_graph(analysis, allow_custom_code=self.allow_custom_code)
            self.plan = build_plan(compiled, device=device, steps_per_epoch=steps)
        except GraphCompileError as exc:
            raise RunFailed("invalid_graph", str(exc)) from None
        self.source = compiled.source
        if self.overrides.get("init_weights") and self.resume_path is None:
            self._load_initial_weights(compiled)

        resident = s["fast_path"] and self._fits_on_device(x_tr, y_tr, x_va, y_va)
        self.train_feed = Feeder(
            x_tr, y_tr, device, batch, resident=resident, rank=self.dist.rank, world=self.dist.world
        )
        self.val_feed = Feeder(x_va, y_va, device, max(batch, 256), resident=resident)
        self.order = EpochOrder(self.n_train, s["shuffle"], s["seed"])
        torch.manual_seed(s["seed"])  # dropout and friends: the same stream on every run

        model = self.plan.model
        if self.dist.world > 1:
            model = self.dist.wrap(model, device)
        if s["compile"]:
            model = torch.compile(model)
        scaler = torch.amp.GradScaler(device.type) if self.placement.use_scaler else None
        self.scaler = scaler
        ctx = StepContext(
            self.plan, model, self.placement, s["grad_clip"], s["grad_accumulation"], scaler
        )
        self.step_ctx = ctx
        self.step_mode = "eager" + (" + torch.compile" if s["compile"] else "")
        self.step_fn = eager_step(ctx)
        if device.type == "cuda" and self.cuda_graphs != "off" and s["fast_path"]:
            sched = type(self.plan.scheduler).__name__ if self.plan.scheduler else None
            blockers = cuda_graph_blockers(ctx, sched, has_custom_code(raw))
            if s["compile"]:
                blockers.append("torch.compile is on")
            if self.dist.world > 1:
                blockers.append("data-parallel training")
            if not blockers:
                self.step_fn = GraphedStep(
                    ctx,
                    self.train_feed.x[:1],
                    self.train_feed.y[:1],
                    log=self.log,
                    capacity=self.flush_steps,
                )
                self.step_mode = "whole-step CUDA graph"
            else:
                self.log("whole-step CUDA graph not used: " + "; ".join(blockers))
        self.metric_terms = self._metric_terms(device)
        self.loaded = loaded
        if self.resume_path is not None:
            self._restore(self.resume_path)

    def _fits_on_device(self, *tensors: torch.Tensor) -> bool:
        device = self.placement.device
        if device.type != "cuda":
            return True  # in-memory data is already resident in host memory
        free, _ = torch.cuda.mem_get_info(device)
        need = sum(t.element_size() * t.nelement() for t in tensors)
        return need <= RESIDENT_FRACTION * free

    def _metric_terms(self, device) -> list[tuple[int, TermMetrics]]:
        terms = []
        scale = None
        if self.target_scaler is not None:
            scale = (self.target_scaler.mean, self.target_scaler.std)
        for i, term in enumerate(self.plan.losses):
            loss_type = type(term.module).__name__
            if ("data", "y") not in term.sources:
                continue
            if loss_type in CLASSIFICATION_LOSSES:
                kind = "classification"
            elif loss_type in REGRESSION_LOSSES:
                kind = "regression"
            else:
                continue
            terms.append(
                (
                    i,
                    TermMetrics(
                        kind, self.loaded_classes(), device, scale if kind == "regression" else None
                    ),
                )
            )
        return terms

    def loaded_classes(self) -> int | None:
        return self.plan.data.num_classes

    def _load_initial_weights(self, compiled) -> None:
        """Warm start: the model starts from a weights file instead of its seeded init."""
        from graph_compiler.weights import WeightsError, load_into, node_owners, read_weights_file

        path = Path(str(self.overrides["init_weights"]))
        if not path.is_absolute() and self.out_dir is not None:
            path = self.out_dir / path
        partial = bool(self.overrides.get("init_partial"))
        try:
            given = read_weights_file(path)
            owners = node_owners(compiled.attributes)
            report = load_into(self.plan.model, given, owners, partial=partial)
        except WeightsError as exc:
            raise RunFailed(exc.code, f"initial weights {path.name}: {exc}") from None
        skipped = len(report.missing) + len(report.wrong_shape)
        self.log(
            f"started from the weights in {path.name}: {len(report.matched)} tensors loaded"
            + (f", {skipped} left at their initial values (partial loading)" if skipped else "")
        )

    # --- resume ------------------------------------------------------------------------------

    def _restore(self, path: Path) -> None:
        try:
            state = load_checkpoint(path)
        except CheckpointError as exc:
            raise RunFailed("checkpoint_error", str(exc)) from None
        try:
            self.plan.model.load_state_dict(state["model"])
            self.plan.optimizer.load_state_dict(state["optimizer"])
            if self.plan.scheduler is not None and state.get("scheduler") is not None:
                self.plan.scheduler.load_state_dict(state["scheduler"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise RunFailed(
                "checkpoint_error",
                f"checkpoint {path} does not fit this graph: {str(exc).splitlines()[0]}",
            ) from None
        self.epoch = int(state["epoch"])
        self.global_step = int(state["step"])
        self.resume_position = int(state.get("position", 0))
        self.order.restore(state["order"], mid_epoch=self.resume_position > 0)
        set_rng_state(state["rng"], self.placement.device)
        self.history = list(json.loads(state.get("history", "[]")))
        if self.out_dir is not None:
            self._best = best_kept(self.out_dir / "checkpoints", self.history)
        self.log(f"resumed from {path} at epoch {self.epoch + 1}, step {self.global_step}")

    def _checkpoint(self, name: str, position: int = 0) -> str | None:
        if self.out_dir is None or not self.dist.is_main:
            return None
        plan = self.plan
        optimizer = plan.optimizer.state_dict()
        for group in optimizer["param_groups"]:  # a CUDA-graph run keeps lr as a device tensor
            if isinstance(group.get("lr"), torch.Tensor):
                group["lr"] = float(group["lr"].item())
            if group.get("capturable"):
                group["capturable"] = False
        state = {
            "model": plan.model.state_dict(),
            "optimizer": optimizer,
            "scheduler": plan.scheduler.state_dict() if plan.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(self.placement.device),
            "order": self.order.state(),
            "epoch": self.epoch,
            "step": self.global_step,
            "position": position,
            "normalizer": self.normalizer.state_dict(),
            "target_scaler": self.target_scaler.state_dict() if self.target_scaler else None,
            "history": json.dumps(self.history),
            "document": json.dumps(self.raw_document),
        }
        folder = self.out_dir / "checkpoints"
        path = folder / name
        if self.checkpoint_quota is not None:
            try:
                self.checkpoint_quota.check(self._checkpoint_estimate())
            except QuotaExceeded as exc:
                raise RunFailed("quota_exceeded", str(exc)) from None
        save_checkpoint(path, state)
        self.latest_checkpoint = str(path)
        if path in self._written:  # rewritten (a resumed run passing the same epoch)
            self._written.remove(path)
        self._written.append(path)
        record = self.history[-1] if self.history else None
        if position == 0 and record is not None and record.get("epoch") == self.epoch:
            metric = monitored(record)
            if metric is not None and better(metric, self._best[0] if self._best else None):
                self._best = (metric, path)
        prune(folder, self._written, self.settings["keep_checkpoints"], self._best_path())
        self.events.emit(
            "checkpoint", path=str(path), epoch=self.epoch, step=self.global_step, position=position
        )
        return str(path)

    def _best_path(self) -> Path | None:
        return self._best[1] if self._best else None

    def _checkpoint_estimate(self) -> int:
        """The next checkpoint's size: the last one's (they are all alike), or the model's
        tensors three times over (weights plus two optimizer moments) before the first."""
        last = Path(self.latest_checkpoint) if self.latest_checkpoint else None
        if last is not None and last.is_file():
            return last.stat().st_size
        model = self.plan.model.state_dict().values()
        return 3 * sum(t.element_size() * t.nelement() for t in model)

    # --- the loop ----------------------------------------------------------------------------

    def _train(self, result: RunResult) -> str:
        s, plan = self.settings, self.plan
        device = self.placement.device
        self.events.emit(
            "run_started",
            **self.placement.describe(),
            step_mode=self.step_mode,
            data_mode=self.train_feed.mode,
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            steps_per_epoch=self.train_feed.steps(),
            train_samples=self.n_train,
            val_samples=self.n_val,
            params=sum(p.numel() for p in plan.model.parameters()),
            trainable_params=sum(p.numel() for p in plan.model.parameters() if p.requires_grad),
            seed=s["seed"],
            world_size=self.dist.world,
            resumed_from=str(self.resume_path) if self.resume_path else None,
            torch=torch.__version__,
            cpu_threads=torch.get_num_threads(),
        )
        self._write_static_files()
        interval = plan.scheduler_interval
        accumulation = s["grad_accumulation"]
        batches = self.train_feed.steps()
        skip = self.resume_position
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        while self.epoch < s["epochs"]:
            epoch_start = time.perf_counter()
            plan.model.train()
            order = self.order.next_epoch()
            pending: list[torch.Tensor] = []
            pending_first = self.global_step + 1
            last_flush = time.perf_counter()
            epoch_losses: list[float] = []
            position = skip
            step_fn, feed = self.step_fn, self.train_feed
            by_index = feed.resident and hasattr(step_fn, "from_indices")
            batches_iter = feed.epoch_indices(order, skip) if by_index else feed.epoch(order, skip)
            for item in batches_iter:
                position += 1
                boundary = position % accumulation == 0 or position == batches
                if by_index:
                    loss = step_fn.from_indices(feed.x, feed.y, item, boundary)
                else:
                    loss = step_fn(*item, boundary)
                self.global_step += 1
                if loss is not None:  # None: a CUDA-graph step recorded it on the device
                    pending.append(loss)
                if boundary and interval == "step" and plan.scheduler is not None:
                    plan.scheduler.step()
                now = time.perf_counter()
                unread = self.global_step - pending_first + 1
                if unread >= self.flush_steps or now - last_flush >= self.flush_seconds:
                    epoch_losses += self._flush(pending, pending_first)
                    pending, pending_first, last_flush = [], self.global_step + 1, now
                if self._stop.is_set() and boundary and position < batches:
                    epoch_losses += self._flush(pending, pending_first)
                    return self._stopped(result, position)
            skip = 0
            epoch_losses += self._flush(pending, pending_first)
            self.epoch += 1
            train_time = time.perf_counter() - epoch_start
            record = self._end_epoch(epoch_losses, train_time)
            if plan.scheduler is not None and interval == "epoch":
                if type(plan.scheduler).__name__ == "ReduceLROnPlateau":
                    monitor = plan.scheduler_monitor or "val_loss"
                    value = record.get(monitor, record.get("train_loss"))
                    plan.scheduler.step(value)
                else:
                    plan.scheduler.step()
            every = s["checkpoint_every"]
            final = self.epoch == s["epochs"]
            if final or (every and self.epoch % every == 0):
                self._checkpoint(f"epoch-{self.epoch:04d}.pt")
            if self._stop.is_set() or (
                self.stop_at_epoch and self.epoch >= self.stop_at_epoch and not final
            ):
                if not (every and self.epoch % every == 0):
                    self._checkpoint(f"epoch-{self.epoch:04d}.pt")
                return self._stopped(result, 0)
        self._write_final_files()
        return "finished"

    def _stopped(self, result: RunResult, position: int) -> str:
        if position:
            self._checkpoint(f"step-{self.global_step:07d}.pt", position)
        result.reason = "stopped on request"
        self.events.emit(
            "stopped", epoch=self.epoch, step=self.global_step, checkpoint=self.latest_checkpoint
        )
        return "stopped"

    def _flush(self, pending: list[torch.Tensor], first_step: int) -> list[float]:
        """Read the pending step losses in one transfer, check them, emit one event per step."""
        self._check_consumers()  # a few times a second: a failed writer stops the run soon
        drain = getattr(self.step_fn, "drain", None)
        values = drain() if drain is not None else []  # CUDA-graph steps record on the device
        if pending:
            values += torch.stack(pending).float().tolist()
        if not values:
            return []
        if self.dist.world > 1:
            values = self.dist.mean(values, self.placement.device)
        lr = self._lr()
        per_epoch = self.train_feed.steps()
        for i, value in enumerate(values):
            step = first_step + i
            if not math.isfinite(value):
                epoch = (step - 1) // per_epoch + 1
                in_epoch = (step - 1) % per_epoch + 1
                raise RunFailed(
                    "non_finite_loss",
                    f"non-finite loss at epoch {epoch} step {in_epoch} "
                    f"(global step {step}): {value}",
                )
            self.events.emit("step", epoch=self.epoch + 1, step=step, loss=value, lr=lr)
        return values

    def _lr(self) -> float:
        lr = self.plan.optimizer.param_groups[0]["lr"]
        return float(lr.item() if isinstance(lr, torch.Tensor) else lr)

    @torch.inference_mode()
    def _validate(self) -> dict[str, float]:
        if self.n_val == 0:
            return {}
        model = self.plan.model
        model.eval()
        for _, m in self.metric_terms:
            m.reset()
        total = torch.zeros((), dtype=torch.float64, device=self.placement.device)
        count = 0
        parts_sum: dict[str, torch.Tensor] = {}
        for xb, yb in self.val_feed.epoch(torch.arange(self.n_val)):
            batch = {"x": xb, "y": yb}
            with self.step_ctx.autocast():
                outputs = self.plan.forward(batch)
                loss, parts = self.plan.compute_loss(outputs, batch)
            n = xb.shape[0]
            total += loss.double() * n
            count += n
            for name, value in parts.items():
                parts_sum[name] = parts_sum.get(name, 0) + value.double() * n
            for index, metric in self.metric_terms:
                term = self.plan.losses[index]
                pred = next(outputs[ref] for kind, ref in term.sources if kind == "output")
                metric.update(pred.float(), yb)
        out = {"val_loss": float(total) / count}
        if len(parts_sum) > 1:
            for name, value in parts_sum.items():
                out[f"val_loss/{name}"] = float(value) / count
        for _, metric in self.metric_terms:
            out.update({f"val_{k}": v for k, v in metric.compute().items()})
        return out

    def _end_epoch(self, losses: list[float], train_time: float) -> dict:
        val = self._validate()
        device = self.placement.device
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        record = {
            "epoch": self.epoch,
            "train_loss": sum(losses) / len(losses) if losses else float("nan"),
            **val,
            "lr": self._lr(),
            "samples_per_s": self.n_train / train_time if train_time > 0 else 0.0,
            "epoch_time": train_time,
            "peak_memory_mb": peak,
            "steps": self.global_step,
        }
        self.history.append(record)
        self.events.emit("epoch", **record)
        return record

    # --- files -------------------------------------------------------------------------------

    def _write_static_files(self) -> None:
        if self.out_dir is None or not self.dist.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "model.py").write_text(self.source)
        (self.out_dir / "graph.json").write_text(json.dumps(self.raw_document, indent=2) + "\n")
        preprocess = {
            "normalizer": _jsonable(self.normalizer.state_dict()),
            "target_scaler": _jsonable(self.target_scaler.state_dict())
            if self.target_scaler
            else None,
            "class_names": self.loaded.class_names,
            "task": self.loaded.task,
        }
        (self.out_dir / "preprocess.json").write_text(json.dumps(preprocess, indent=2) + "\n")
        environment = {
            "cpu_threads": torch.get_num_threads(),
            "device": str(self.placement.device),
            "torch": torch.__version__,
        }
        (self.out_dir / ENVIRONMENT_FILE).write_text(json.dumps(environment, indent=2) + "\n")

    def _write_final_files(self) -> None:
        if self.out_dir is None or not self.dist.is_main:
            return
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.plan.model.state_dict().items()}
        save_file(state, str(self.out_dir / "model.safetensors"))


def _jsonable(state: Mapping[str, Any]) -> dict:
    return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
