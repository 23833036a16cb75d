"""The training step: zero_grad → forward (autocast) → loss → backward → clip → step.

Three ways to run the same step: eager; with torch.compile on the model; and on CUDA with
static shapes, the whole step (forward, backward, optimizer) captured in one CUDA graph and
replayed — which removes the per-kernel launch cost that dominates small models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from graph_compiler.plan import TrainingPlan

from .device import Placement

StepFn = Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor]


@dataclass
class StepContext:
    plan: TrainingPlan
    model: nn.Module  # what forward runs: the plan's model, compiled or DDP-wrapped
    placement: Placement
    grad_clip: float | None
    accumulation: int
    scaler: torch.amp.GradScaler | None

    def autocast(self):
        p = self.placement
        if p.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(p.device.type, dtype=p.autocast_dtype)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        batch = {"x": x, "y": y}
        args = [batch[name] for name in self.plan.compiled.interface.inputs]
        with self.autocast():
            out = self.model(*args)
            outputs = out if isinstance(out, tuple) else (out,)
            total, _ = self.plan.compute_loss(outputs, batch)
        return total, outputs


def eager_step(ctx: StepContext) -> StepFn:
    """One micro-batch; the optimizer steps when `boundary` is True (gradient accumulation)."""
    opt, scaler, params = ctx.plan.optimizer, ctx.scaler, None

    def step(x: torch.Tensor, y: torch.Tensor, boundary: bool) -> torch.Tensor:
        nonlocal params
        total, _ = ctx.loss(x, y)
        scaled = total / ctx.accumulation if ctx.accumulation > 1 else total
        if scaler is not None:
            scaler.scale(scaled).backward()
        else:
            scaled.backward()
        if boundary:
            if ctx.grad_clip:
                if scaler is not None:
                    scaler.unscale_(opt)
                params = params or [p for g in opt.param_groups for p in g["params"]]
                torch.nn.utils.clip_grad_norm_(params, ctx.grad_clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            opt.zero_grad(set_to_none=True)
        return total.detach()

    return step


def cuda_graph_blockers(
    ctx: StepContext, scheduler_name: str | None, custom_code: bool
) -> list[str]:
    """Why the whole-step CUDA graph cannot be used for this run (empty: it can)."""
    reasons = []
    if ctx.placement.device.type != "cuda":
        reasons.append("not on CUDA")
    if ctx.scaler is not None:
        reasons.append("fp16 loss scaling checks for inf on the host every step")
    if ctx.accumulation > 1:
        reasons.append("gradient accumulation")
    if scheduler_name == "ReduceLROnPlateau":
        reasons.append("ReduceLROnPlateau sets the learning rate from the host")
    sched = ctx.plan.scheduler
    if getattr(sched, "cycle_momentum", False):
        reasons.append(f"{scheduler_name} cycles momentum, which a captured step cannot follow")
    if custom_code:
        reasons.append("custom code may not be capturable")
    if not getattr(torch.optim, ctx.plan.optimizer_spec.get("type", ""), None):
        reasons.append("unknown optimizer")
    return reasons


class GraphedStep:
    """The whole step captured in CUDA graphs: one for full batches, one for the last partial
    batch when the data size is not a multiple of the batch size. Inputs are copied into static
    buffers; backward writes the gradients into the graph's own memory; the optimizer is
    capturable and its learning rate is a device tensor that schedulers update in place."""

    def __init__(
        self,
        ctx: StepContext,
        sample_x: torch.Tensor,
        sample_y: torch.Tensor,
        log: Callable[[str], None] = print,
        capacity: int = 256,
    ):
        self.ctx = ctx
        self.log = log
        self.fallback: StepFn | None = None
        # each replay writes its loss into this device buffer: no extra kernel launch per
        # step, and one transfer reads many steps at once (drain); one spare slot for safety
        device = ctx.placement.device
        self.losses = torch.zeros(capacity + 1, dtype=torch.float32, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.recorded = 0
        self.graphs: dict[
            int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor, torch.Tensor]
        ] = {}
        self.pool = None
        self.sample = (sample_x, sample_y)
        self.params = [p for g in ctx.plan.optimizer.param_groups for p in g["params"]]

    def _make_capturable(self) -> None:
        # at capture time, not before: a resumed run loads plain-float param groups first.
        # The learning rate becomes a device tensor only when a scheduler will change it: a
        # float is baked into the graph as a constant, which saves kernels on every step.
        changes_lr = self.ctx.plan.scheduler is not None
        for group in self.ctx.plan.optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = True
            if changes_lr and not isinstance(group["lr"], torch.Tensor):
                group["lr"] = torch.tensor(float(group["lr"]), device=self.ctx.placement.device)
        for state in self.ctx.plan.optimizer.state.values():  # capturable steps live on the GPU
            for name, value in state.items():
                if isinstance(value, torch.Tensor) and value.device != self.ctx.placement.device:
                    state[name] = value.to(self.ctx.placement.device)

    def _body(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        opt = self.ctx.plan.optimizer
        # like a hand-built graph: no gradients at capture, so backward writes them straight
        # into the graph's own memory instead of zeroing and then accumulating into fixed ones
        # (one memset and one add per parameter fewer on every replay). They are produced and
        # consumed within one replay, so graphs sharing the pool may reuse that memory.
        opt.zero_grad(set_to_none=True)
        with torch.autocast(
            "cuda",
            dtype=self.ctx.placement.autocast_dtype,
            enabled=self.ctx.placement.autocast_dtype is not None,
            cache_enabled=False,
        ):
            batch = {"x": x, "y": y}
            args = [batch[name] for name in self.ctx.plan.compiled.interface.inputs]
            out = self.ctx.model(*args)
            outputs = out if isinstance(out, tuple) else (out,)
            total, _ = self.ctx.plan.compute_loss(outputs, batch)
        total.backward()
        if self.ctx.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.ctx.grad_clip, foreach=True)
        opt.step()
        loss = total.detach()
        self.losses.index_copy_(0, self.slot, loss.float().view(1))
        self.slot.add_(1)  # drain() resets it; the trainer drains before the ring is full
        return loss

    def _capture(self, size: int) -> None:
        sx = torch.empty(
            (size, *self.sample[0].shape[1:]),
            dtype=self.sample[0].dtype,
            device=self.sample[0].device,
        )
        sy = torch.empty(
            (size, *self.sample[1].shape[1:]),
            dtype=self.sample[1].dtype,
            device=self.sample[1].device,
        )
        sx.copy_(self.sample[0][:1].expand_as(sx))
        sy.copy_(self.sample[1][:1].expand_as(sy))
        opt = self.ctx.plan.optimizer
        self._make_capturable()
        # warm up on a side stream: allocates gradients and optimizer state outside the graph;
        # the optimizer state is saved and restored so warm-up steps leave no trace
        saved_params = [p.detach().clone() for p in self.params]
        saved_slot = self.slot.clone()
        buffers = list(self.ctx.plan.model.buffers())  # BatchNorm running statistics
        saved_buffers = [b.clone() for b in buffers]
        saved_state = {
            k: {n: (t.clone() if isinstance(t, torch.Tensor) else t) for n, t in v.items()}
            for k, v in opt.state.items()
        }
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self._body(sx, sy)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                loss = self._body(sx, sy)
            self.pool = graph.pool()
        finally:
            self._restore(opt, saved_params, buffers, saved_buffers, saved_state)
            self.slot.copy_(saved_slot)  # warm-up losses are not steps
        self.graphs[size] = (graph, sx, sy, loss)

    def _restore(self, opt, saved_params, buffers, saved_buffers, saved_state) -> None:
        """Undo the warm-up steps: parameters, buffers and optimizer state as before capture."""
        torch.cuda.synchronize()
        with torch.no_grad():
            for p, saved in zip(self.params, saved_params, strict=True):
                p.copy_(saved)
            for b, saved in zip(buffers, saved_buffers, strict=True):
                b.copy_(saved)
            for p, state in opt.state.items():
                for name, value in state.items():
                    old = saved_state.get(p, {}).get(name)
                    if isinstance(value, torch.Tensor):
                        if old is None:
                            value.zero_()
                        else:
                            value.copy_(old)

    def _give_up(self, exc: Exception) -> None:
        """Capture failed: drop every graph (they share gradient tensors with eager steps) and
        train eagerly from here on, with plain-float learning rates again."""
        self.graphs.clear()
        self.pool = None
        for group in self.ctx.plan.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"] = float(group["lr"].item())
            if "capturable" in group:
                group["capturable"] = False
        self.ctx.plan.optimizer.zero_grad(set_to_none=True)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.log(f"whole-step CUDA graph capture failed ({reason}); training eagerly")
        self.fallback = eager_step(self.ctx)

    def _ready(self, size: int) -> bool:
        if self.fallback is None and size not in self.graphs:
            try:
                self._capture(size)
            except Exception as exc:  # unsupported op, host sync in the step, ...
                self._give_up(exc)
        return self.fallback is None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, boundary: bool) -> torch.Tensor | None:
        """Returns None: the loss went into the device buffer (read it with drain())."""
        if not self._ready(x.shape[0]):
            return self.fallback(x, y, boundary)
        graph, sx, sy, _ = self.graphs[x.shape[0]]
        sx.copy_(x, non_blocking=True)
        sy.copy_(y, non_blocking=True)
        graph.replay()
        self.recorded += 1
        return None

    def from_indices(
        self, x_all: torch.Tensor, y_all: torch.Tensor, idx: torch.Tensor, boundary: bool
    ) -> torch.Tensor | None:
        """Gather the batch straight into the graph's input buffers (resident data)."""
        if not self._ready(idx.shape[0]):
            return self.fallback(x_all.index_select(0, idx), y_all.index_select(0, idx), boundary)
        graph, sx, sy, _ = self.graphs[idx.shape[0]]
        torch.index_select(x_all, 0, idx, out=sx)
        torch.index_select(y_all, 0, idx, out=sy)
        graph.replay()
        self.recorded += 1
        return None

    def drain(self) -> list[float]:
        """The losses of the replays since the last drain, in order (one transfer)."""
        n, size = self.recorded, self.losses.numel()
        if n == 0:
            return []
        if n > size:
            raise RuntimeError(f"{n} steps recorded between reads; the buffer holds {size}")
        values = self.losses[:n].tolist()
        self.slot.zero_()
        self.recorded = 0
        return values
