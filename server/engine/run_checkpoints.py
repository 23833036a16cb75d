"""A run's checkpoints: what a resume needs gathered from the Trainer and written (within the
server's quota, pruned to the last `keep_checkpoints` plus the best epoch's), and a resume
putting it back. The file format, retention rule and quota live in checkpoint.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .checkpoint import (
    CheckpointError,
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
from .run_document import RunFailed

if TYPE_CHECKING:
    from .trainer import Trainer


class Kept:
    """This attempt's checkpoints in the order written, and the best epoch's, kept whatever
    its age (a resume finds it again among the files with best_kept)."""

    def __init__(self) -> None:
        self.written: list[Path] = []
        self.best: tuple[tuple[str, float, bool], Path] | None = None

    def wrote(self, path: Path) -> None:
        if path in self.written:  # rewritten (a resumed run passing the same epoch)
            self.written.remove(path)
        self.written.append(path)

    def consider_best(self, metric: tuple[str, float, bool] | None, path: Path) -> None:
        if metric is not None and better(metric, self.best[0] if self.best else None):
            self.best = (metric, path)

    def best_path(self) -> Path | None:
        return self.best[1] if self.best else None


def training_state(t: Trainer, position: int) -> dict[str, Any]:
    """Everything the run needs to continue exactly where it is, `position` batches into the
    current epoch (0: at its end)."""
    plan = t.plan
    optimizer = plan.optimizer.state_dict()
    for group in optimizer["param_groups"]:  # a CUDA-graph run keeps lr as a device tensor
        if isinstance(group.get("lr"), torch.Tensor):
            group["lr"] = float(group["lr"].item())
        if group.get("capturable"):
            group["capturable"] = False
    return {
        "model": plan.model.state_dict(),
        "optimizer": optimizer,
        "scheduler": plan.scheduler.state_dict() if plan.scheduler is not None else None,
        "scaler": t.scaler.state_dict() if t.scaler is not None else None,
        "rng": rng_state(t.placement.device),
        "order": t.order.state(),
        "epoch": t.epoch,
        "step": t.global_step,
        "position": position,
        "normalizer": t.normalizer.state_dict(),
        "target_scaler": t.target_scaler.state_dict() if t.target_scaler else None,
        "history": json.dumps(t.history),
        "document": json.dumps(t.raw_document),
    }


def write_checkpoint(t: Trainer, name: str, position: int = 0) -> str | None:
    """Write checkpoints/NAME in the run folder (only the main rank, only with a folder), keep
    the ones the retention rule keeps, and announce it."""
    if t.out_dir is None or not t.dist.is_main:
        return None
    state = training_state(t, position)
    folder = t.out_dir / "checkpoints"
    path = folder / name
    if t.checkpoint_quota is not None:
        try:
            t.checkpoint_quota.check(_estimate(t))
        except QuotaExceeded as exc:
            raise RunFailed("quota_exceeded", str(exc)) from None
    save_checkpoint(path, state)
    t.latest_checkpoint = str(path)
    t.kept.wrote(path)
    record = t.history[-1] if t.history else None
    if position == 0 and record is not None and record.get("epoch") == t.epoch:
        t.kept.consider_best(monitored(record), path)
    prune(folder, t.kept.written, t.settings["keep_checkpoints"], t.kept.best_path())
    t.events.emit(
        "checkpoint", path=str(path), epoch=t.epoch, step=t.global_step, position=position
    )
    return str(path)


def _estimate(t: Trainer) -> int:
    """The next checkpoint's size: the last one's (they are all alike), or the model's
    tensors three times over (weights plus two optimizer moments) before the first."""
    last = Path(t.latest_checkpoint) if t.latest_checkpoint else None
    if last is not None and last.is_file():
        return last.stat().st_size
    model = t.plan.model.state_dict().values()
    return 3 * sum(p.element_size() * p.nelement() for p in model)


# how an optimizer runs, not where it is: a checkpoint's values would otherwise replace the
# live ones (a CUDA run's fused=True resumed on the CPU, or the reverse)
KERNEL_FLAGS = ("fused", "foreach", "capturable")


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """The saved state and hyperparameters, keeping this run's kernel choice."""
    live = [{k: g[k] for k in KERNEL_FLAGS if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, flags in zip(optimizer.param_groups, live, strict=True):
        group.update(flags)


def restore(t: Trainer, path: Path) -> None:
    """Resume: the model, optimizer, scheduler, scaler, data order, random streams, progress
    and history as the checkpoint at PATH left them."""
    try:
        state = load_checkpoint(path)
    except CheckpointError as exc:
        raise RunFailed("checkpoint_error", str(exc)) from None
    try:
        t.plan.model.load_state_dict(state["model"])
        load_optimizer_state(t.plan.optimizer, state["optimizer"])
        if t.plan.scheduler is not None and state.get("scheduler") is not None:
            t.plan.scheduler.load_state_dict(state["scheduler"])
        if t.scaler is not None and state.get("scaler"):
            t.scaler.load_state_dict(state["scaler"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise RunFailed(
            "checkpoint_error",
            f"checkpoint {path} does not fit this graph: {str(exc).splitlines()[0]}",
        ) from None
    t.epoch = int(state["epoch"])
    t.global_step = int(state["step"])
    t.resume_position = int(state.get("position", 0))
    t.order.restore(state["order"], mid_epoch=t.resume_position > 0)
    set_rng_state(state["rng"], t.placement.device)
    t.history = list(json.loads(state.get("history", "[]")))
    if t.out_dir is not None:
        t.kept.best = best_kept(t.out_dir / "checkpoints", t.history)
    t.log(f"resumed from {path} at epoch {t.epoch + 1}, step {t.global_step}")
