"""Where and in what precision a run trains, and why (the run states both)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


class SetupError(Exception):
    """A run cannot start as configured (no CUDA, bad device index, ...)."""


@dataclass(frozen=True)
class Placement:
    device: torch.device
    device_reason: str
    precision: str  # what actually runs: fp32 | bf16 | fp16
    precision_reason: str
    autocast_dtype: torch.dtype | None
    use_scaler: bool

    def describe(self) -> dict:
        name = "cpu"
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        return {
            "device": str(self.device),
            "device_name": name,
            "device_reason": self.device_reason,
            "precision": self.precision,
            "precision_reason": self.precision_reason,
        }


def choose_device(requested: str, local_rank: int | None = None) -> tuple[torch.device, str]:
    cuda = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda else 0
    if requested == "auto":
        if cuda:
            index = local_rank or 0
            return torch.device("cuda", index), f"auto: CUDA is available ({count} GPU(s))"
        return torch.device("cpu"), "auto: no CUDA device is available"
    if requested == "cpu":
        return torch.device("cpu"), "requested cpu"
    if requested.startswith("cuda"):
        if not cuda:
            raise SetupError(f"device {requested!r} was requested but CUDA is not available here")
        index = int(requested.split(":")[1]) if ":" in requested else (local_rank or 0)
        if index >= count:
            raise SetupError(f"device {requested!r} was requested but there are {count} GPU(s)")
        return torch.device("cuda", index), f"requested {requested}"
    raise SetupError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N")


def choose_precision(
    requested: str, device: torch.device
) -> tuple[str, str, torch.dtype | None, bool]:
    if requested == "fp32":
        return "fp32", "requested fp32", None, False
    if requested == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return (
                "fp16",
                "bf16 is not supported by this GPU: fp16 with loss scaling",
                torch.float16,
                True,
            )
        return "bf16", "requested bf16 (autocast)", torch.bfloat16, False
    if requested == "fp16":
        if device.type != "cuda":
            return (
                "bf16",
                "fp16 autocast needs CUDA: bf16 autocast on the CPU instead",
                torch.bfloat16,
                False,
            )
        return "fp16", "requested fp16 (autocast + GradScaler)", torch.float16, True
    raise SetupError(f"unknown precision {requested!r}; use fp32, bf16 or fp16")


def place(device: str, precision: str, local_rank: int | None = None) -> Placement:
    dev, why = choose_device(device, local_rank)
    prec, prec_why, dtype, scaler = choose_precision(precision, dev)
    return Placement(dev, why, prec, prec_why, dtype, scaler)
