"""A training run: the Trainer drives it — setup, the epoch loop, stop and resume, events.

Per epoch: model.train(), optimizer.zero_grad(set_to_none=True), forward under the chosen
precision, loss, backward, optional clipping, step, the scheduler at its interval; then
validation in model.eval() under torch.inference_mode(). Losses stay on the device and are read
in batches, so a step never waits for the host just to report.

Each concern has its own room beside this one: run_document (overrides, RunFailed), run_data
(loading, splitting, scaling), initial_weights (warm start), step_setup (which step runs),
step_losses (reading and checking losses), validation, epoch_record, run_checkpoints (save,
retention, resume) and run_folder (the files a run leaves). The names other modules import
from here stay importable from here.
"""

from __future__ import annotations

import gc
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
from graph_compiler.custom import has_custom_code
from graph_compiler.plan import TrainingPlan, build_plan
from graph_compiler.training import steps_per_epoch

from .batching import EpochOrder, Feeder
from .checkpoint import CheckpointQuota
from .device import Placement, SetupError, place
from .diskspace import is_disk_full, write_error_reason
from .distributed import DistContext
from .epoch_record import epoch_record
from .events import EventBus
from .initial_weights import load_initial_weights
from .metrics import TermMetrics
from .run_checkpoints import Kept, restore, write_checkpoint
from .run_data import RESIDENT_FRACTION, fits_on_device, load_run_data, split_and_scale
from .run_document import OVERRIDABLE, RUN_OPTIONS, RunFailed, prepare_document
from .run_folder import ENVIRONMENT_FILE, write_final_weights, write_static_files
from .step_losses import check_finite, read_losses
from .step_setup import choose_step
from .steps import StepContext
from .token_metrics import TokenMetrics
from .token_range import check_token_ids
from .validation import metric_terms, validate

__all__ = [  # re-exported: server/api, server/exports and the tests import them from here
    "ENVIRONMENT_FILE",
    "OVERRIDABLE",
    "RESIDENT_FRACTION",
    "RUN_OPTIONS",
    "RunFailed",
    "RunResult",
    "Trainer",
    "prepare_document",
]

CONSUMER_FAILED = "recording the run's events failed"


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
        self.kept = Kept()  # this attempt's checkpoints and the best epoch's (run_checkpoints)
        # progress: a resume (run_checkpoints.restore) starts them where its checkpoint left off
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
        self.metric_terms: list[tuple[int, TermMetrics | TokenMetrics]] = []

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
        raw, loaded = load_run_data(
            self.document,
            self.overrides,
            base_dir=self.base_dir,
            data_root=self.data_root,
            data_names=self.data_names,
        )
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

        data = split_and_scale(loaded, s["val_split"], s["seed"])
        self.normalizer, self.target_scaler = data.normalizer, data.target_scaler
        check_token_ids(
            analysis, {"training": data.x_train, "validation": data.x_val}, s["batch_size"]
        )
        self.n_train, self.n_val = len(data.x_train), len(data.x_val)

        batch = s["batch_size"]
        steps = steps_per_epoch(self.n_train, batch, s["grad_accumulation"])
        try:
            compiled = compile_graph(analysis, allow_custom_code=self.allow_custom_code)
            self.plan = build_plan(compiled, device=device, steps_per_epoch=steps)
        except GraphCompileError as exc:
            raise RunFailed("invalid_graph", str(exc)) from None
        self.source = compiled.source
        if self.overrides.get("init_weights") and self.resume_path is None:
            load_initial_weights(self.plan.model, compiled, self.overrides, self.out_dir, self.log)

        resident = s["fast_path"] and fits_on_device(
            device, data.x_train, data.y_train, data.x_val, data.y_val
        )
        self.train_feed = Feeder(
            data.x_train,
            data.y_train,
            device,
            batch,
            resident=resident,
            rank=self.dist.rank,
            world=self.dist.world,
        )
        self.val_feed = Feeder(data.x_val, data.y_val, device, max(batch, 256), resident=resident)
        self.order = EpochOrder(self.n_train, s["shuffle"], s["seed"])
        torch.manual_seed(s["seed"])  # dropout and friends: the same stream on every run

        step = choose_step(
            self.plan,
            self.placement,
            s,
            self.dist,
            cuda_graphs=self.cuda_graphs,
            custom_code=has_custom_code(raw),
            train_feed=self.train_feed,
            log=self.log,
            capacity=self.flush_steps,
        )
        self.step_ctx, self.scaler, self.step_fn, self.step_mode = (
            step.ctx,
            step.scaler,
            step.fn,
            step.mode,
        )
        self.metric_terms = metric_terms(self.plan, self.target_scaler, device)
        self.loaded = loaded
        if self.resume_path is not None:
            restore(self, self.resume_path)

    def loaded_classes(self) -> int | None:
        return self.plan.data.num_classes

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
                write_checkpoint(self, f"epoch-{self.epoch:04d}.pt")
            if self._stop.is_set() or (
                self.stop_at_epoch and self.epoch >= self.stop_at_epoch and not final
            ):
                if not (every and self.epoch % every == 0):
                    write_checkpoint(self, f"epoch-{self.epoch:04d}.pt")
                return self._stopped(result, 0)
        self._write_final_files()
        return "finished"

    def _stopped(self, result: RunResult, position: int) -> str:
        if position:
            write_checkpoint(self, f"step-{self.global_step:07d}.pt", position)
        result.reason = "stopped on request"
        self.events.emit(
            "stopped", epoch=self.epoch, step=self.global_step, checkpoint=self.latest_checkpoint
        )
        return "stopped"

    def _flush(self, pending: list[torch.Tensor], first_step: int) -> list[float]:
        """Read the pending step losses in one transfer, check them, emit one event per step."""
        self._check_consumers()  # a few times a second: a failed writer stops the run soon
        values = read_losses(pending, self.step_fn, self.dist, self.placement.device)
        if not values:
            return []
        lr = self._lr()
        per_epoch = self.train_feed.steps()
        for step, value in enumerate(values, start=first_step):
            check_finite(value, step, per_epoch)  # the steps before it are still reported
            self.events.emit("step", epoch=self.epoch + 1, step=step, loss=value, lr=lr)
        return values

    def _lr(self) -> float:
        lr = self.plan.optimizer.param_groups[0]["lr"]
        return float(lr.item() if isinstance(lr, torch.Tensor) else lr)

    def _validate(self) -> dict[str, float]:
        return validate(
            self.plan,
            self.val_feed,
            self.n_val,
            self.step_ctx,
            self.metric_terms,
            self.placement.device,
        )

    def _end_epoch(self, losses: list[float], train_time: float) -> dict:
        val = self._validate()
        record = epoch_record(
            epoch=self.epoch,
            losses=losses,
            val=val,
            lr=self._lr(),
            samples=self.n_train,
            train_time=train_time,
            device=self.placement.device,
            steps=self.global_step,
        )
        self.history.append(record)
        self.events.emit("epoch", **record)
        return record

    # --- files -------------------------------------------------------------------------------

    def _write_static_files(self) -> None:
        if self.out_dir is None or not self.dist.is_main:
            return
        write_static_files(
            self.out_dir,
            source=self.source,
            document=self.raw_document,
            normalizer=self.normalizer,
            target_scaler=self.target_scaler,
            class_names=self.loaded.class_names,
            task=self.loaded.task,
            device=self.placement.device,
            tokenizer=self.loaded.tokenizer,
        )

    def _write_final_files(self) -> None:
        if self.out_dir is None or not self.dist.is_main:
            return
        write_final_weights(self.out_dir, self.plan.model)
