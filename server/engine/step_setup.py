"""Which training step a run uses: the model as the step runs it (DDP-wrapped, compiled), the
fp16 GradScaler, and the whole-step CUDA graph where nothing blocks it (else eager, saying
why in the log)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from graph_compiler.plan import TrainingPlan

from .batching import Feeder
from .device import Placement
from .distributed import DistContext
from .steps import GraphedStep, StepContext, cuda_graph_blockers, eager_step


@dataclass
class ChosenStep:
    ctx: StepContext
    scaler: torch.amp.GradScaler | None
    fn: Any  # eager_step(...) or a GraphedStep
    mode: str  # as run_started reports it


def choose_step(
    plan: TrainingPlan,
    placement: Placement,
    settings: dict[str, Any],
    dist: DistContext,
    *,
    cuda_graphs: str,  # auto | on | off
    custom_code: bool,
    train_feed: Feeder,
    log: Callable[[str], None],
    capacity: int,  # losses a CUDA-graph step holds on the device between flushes
) -> ChosenStep:
    s, device = settings, placement.device
    model = plan.model
    if dist.world > 1:
        model = dist.wrap(model, device)
    if s["compile"]:
        model = torch.compile(model)
    scaler = torch.amp.GradScaler(device.type) if placement.use_scaler else None
    ctx = StepContext(plan, model, placement, s["grad_clip"], s["grad_accumulation"], scaler)
    mode = "eager" + (" + torch.compile" if s["compile"] else "")
    fn = eager_step(ctx)
    if device.type == "cuda" and cuda_graphs != "off" and s["fast_path"]:
        sched = type(plan.scheduler).__name__ if plan.scheduler else None
        blockers = cuda_graph_blockers(ctx, sched, custom_code)
        if s["compile"]:
            blockers.append("torch.compile is on")
        if dist.world > 1:
            blockers.append("data-parallel training")
        if not blockers:
            fn = GraphedStep(ctx, train_feed.x[:1], train_feed.y[:1], log=log, capacity=capacity)
            mode = "whole-step CUDA graph"
        else:
            log("whole-step CUDA graph not used: " + "; ".join(blockers))
    return ChosenStep(ctx, scaler, fn, mode)
