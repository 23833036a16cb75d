"""The record an epoch ends with (the `epoch` event and the run's history): losses, the
validation metrics, the learning rate, throughput and peak memory."""

from __future__ import annotations

import resource

import torch


def peak_memory_mb(device: torch.device) -> float:
    """The device's peak allocation on CUDA; elsewhere the process's peak resident size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def epoch_record(
    *,
    epoch: int,
    losses: list[float],
    val: dict[str, float],
    lr: float,
    samples: int,
    train_time: float,
    device: torch.device,
    steps: int,
) -> dict:
    return {
        "epoch": epoch,
        "train_loss": sum(losses) / len(losses) if losses else float("nan"),
        **val,
        "lr": lr,
        "samples_per_s": samples / train_time if train_time > 0 else 0.0,
        "epoch_time": train_time,
        "peak_memory_mb": peak_memory_mb(device),
        "steps": steps,
    }
