"""Checkpoints: everything a run needs to continue exactly where it stopped.

Written atomically (temp file + rename) and read with `torch.load(weights_only=True)` only: a
checkpoint holds tensors, numbers, strings and lists — never pickled code.

Not every checkpoint is kept (one a second for a small model fills a disk in hours): a run keeps
its last `keep_checkpoints` and the best epoch's by the monitored metric (`monitored`, the same
rule the server shows as the run's best), and the server gives all run folders of a data dir a
quota (`CheckpointQuota`) that a checkpoint must fit in.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .diskspace import format_bytes, tree_bytes

FORMAT = "torchloom.checkpoint/1"
# the metric a run is judged by: the first of these its epochs report (higher is better?) —
# a language model by its perplexity (its token accuracy ignores how sure it is), a per-pixel
# classifier by its mean IoU (its pixel accuracy is high for a model that predicts background)
MONITORED = (
    ("val_perplexity", False),
    ("val_miou", True),
    ("val_accuracy", True),
    ("val_r2", True),
    ("val_loss", False),
)
EPOCH_FILE = re.compile(r"^epoch-(\d+)\.pt$")


class CheckpointError(Exception):
    pass


class QuotaExceeded(CheckpointError):
    pass


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        # through a Python file: a full disk then raises OSError(ENOSPC), where torch's own
        # writer only says "unexpected pos 576 vs 534"
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a half-written file must not fill the disk
            tmp.unlink()
        raise
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} not found") from None
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a torchloom checkpoint ({FORMAT})")
    return state


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# --- which checkpoints are kept --------------------------------------------------------------


def monitored(record: Mapping[str, Any]) -> tuple[str, float, bool] | None:
    """(name, value, higher_is_better) of the metric an epoch record is judged by, or None
    when it reports none (no validation data) or a non-finite value."""
    for name, higher in MONITORED:
        value = record.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (name, float(value), higher) if math.isfinite(value) else None
    return None


def better(a: tuple[str, float, bool], b: tuple[str, float, bool] | None) -> bool:
    """Is `a` better than `b` (ties keep the earlier one)?"""
    if b is None or a[0] != b[0]:
        return b is None
    return a[1] > b[1] if a[2] else a[1] < b[1]


def epoch_of(path: Path) -> int | None:
    match = EPOCH_FILE.match(path.name)
    return int(match.group(1)) if match else None


def checkpoint_files(folder: Path) -> list[Path]:
    """The run's checkpoint files, oldest write first (name as the tie-break)."""
    if not folder.is_dir():
        return []
    files = []
    for p in folder.iterdir():
        with contextlib.suppress(OSError):  # gone meanwhile
            if p.suffix == ".pt" and p.is_file():
                files.append((p.stat().st_mtime_ns, p.name, p))
    return [p for _, _, p in sorted(files)]


def latest_checkpoint(run_folder: Path) -> Path | None:
    files = checkpoint_files(Path(run_folder) / "checkpoints")
    return files[-1] if files else None


def best_kept(folder: Path, history: list[dict]) -> tuple[tuple[str, float, bool], Path] | None:
    """(metric, file) of the epoch checkpoint in `folder` whose epoch was best by `history`:
    how a resumed run finds the best checkpoint it must go on keeping."""
    by_epoch = {r.get("epoch"): r for r in history}
    best = None
    for path in checkpoint_files(folder):
        epoch = epoch_of(path)
        metric = monitored(by_epoch[epoch]) if epoch in by_epoch else None
        if metric is not None and better(metric, best[0] if best else None):
            best = (metric, path)
    return best


def prune(folder: Path, written: list[Path], keep: int, best: Path | None) -> list[Path]:
    """Delete all checkpoints in `folder` but the `keep` most recent and `best`. `written` is
    this attempt's checkpoints in the order written (file times are too coarse to order fast
    runs); files from earlier attempts count as older than those. Leftover temporary files of
    an interrupted save go too. Returns the deleted files."""
    order = [p for p in checkpoint_files(folder) if p not in written] + list(written)
    kept = set(order[-max(1, keep) :])
    if best is not None:
        kept.add(best)
    deleted = []
    for path in order:
        if path not in kept:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                deleted.append(path)
    for tmp in folder.glob("*.pt.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return deleted


class CheckpointQuota:
    """The data directory's budget for run folders: a checkpoint that would take the run folders
    past `limit` bytes is not written, and the run fails saying so (its earlier checkpoints stay,
    so it resumes once room is made)."""

    def __init__(self, root: Path, limit: int):
        self.root, self.limit = Path(root), int(limit)

    def check(self, upcoming: int) -> None:
        used = tree_bytes(self.root)
        if used + upcoming > self.limit:
            raise QuotaExceeded(
                f"checkpoint quota exceeded: the run folders hold {format_bytes(used)} and this "
                f"checkpoint needs about {format_bytes(upcoming)} more, over the data "
                f"directory's quota of {format_bytes(self.limit)} (server setting "
                "run_quota_bytes); delete old runs or raise the quota, then resume the run"
            )
