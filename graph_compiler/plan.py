"""The training plan: the model, losses, optimizer, scheduler and settings as real torch objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .analysis import Analysis, NodeResult
from .build import CompiledGraph, compile_graph
from .catalog import InferContext
from .codegen import ModelInterface
from .custom import as_layer_params, custom_layer_factory
from .datasets import DataInfo
from .infer import torch_kwargs
from .loss_layout import ClassesLast


@dataclass(frozen=True)
class LossTerm:
    node_id: str
    label: str
    module: nn.Module
    weight: float
    # where each loss argument comes from: ("output", index) or ("data", "x" | "y")
    sources: tuple[tuple[str, Any], ...]
    type: str  # the catalog type ("CrossEntropyLoss"); `module` may wrap it (ClassesLast)


@dataclass
class TrainingPlan:
    compiled: CompiledGraph
    model: nn.Module
    losses: list[LossTerm]
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    scheduler_interval: str | None  # "epoch" | "step"
    scheduler_monitor: str | None  # ReduceLROnPlateau's metric
    settings: dict[str, Any]
    data: DataInfo
    data_params: dict[str, Any]
    optimizer_spec: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.compiled.source

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        args = [batch[name] for name in self.compiled.interface.inputs]
        out = self.model(*args)
        return out if isinstance(out, tuple) else (out,)

    def compute_loss(
        self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted total and each term (multi-task losses are summed with their weights)."""
        parts: dict[str, torch.Tensor] = {}
        total = None
        for term in self.losses:
            args = [outputs[ref] if kind == "output" else batch[ref] for kind, ref in term.sources]
            value = term.module(*args)
            parts[term.label] = value
            weighted = value if term.weight == 1.0 else value * term.weight
            total = weighted if total is None else total + weighted
        return total, parts


# Optimizers whose fused CUDA kernel (every parameter's update in a few launches, instead of a
# dozen per tensor group; capturable, as the whole-step CUDA graph needs) is the same update
FUSED_ON_CUDA = ("Adam", "AdamW")


def kernel_choice(optimizer_type: str, device: Any) -> dict[str, Any]:
    """How the optimizer runs on `device`: fused on CUDA where PyTorch has the kernel, else
    PyTorch's default (a for-loop on the CPU, like a hand-written loop's)."""
    if torch.device(device).type == "cuda" and optimizer_type in FUSED_ON_CUDA:
        return {"fused": True}
    return {}


def build_plan(
    document: Any,
    *,
    allow_custom_code: bool = False,
    device: Any = "cpu",
    steps_per_epoch: int | None = None,
) -> TrainingPlan:
    compiled = (
        document
        if isinstance(document, CompiledGraph)
        else compile_graph(document, allow_custom_code=allow_custom_code)
    )
    a = compiled.analysis
    settings = dict(a.settings)
    if steps_per_epoch is not None:
        settings["steps_per_epoch"] = steps_per_epoch
    # weights are drawn on the CPU from the seed, then moved: the same seed gives the same
    # initial model on every device (and in the exported train.py)
    model = compiled.instantiate(seed=settings["seed"]).to(device)
    scope = a.top.scope

    losses = [
        LossTerm(
            w.node_id,
            w.label,
            _loss_module(a.result(w.node_id)).to(device),
            w.weight,
            w.sources,
            w.type,
        )
        for w in loss_wiring(a, compiled.interface)
    ]
    optimizer_node = next(n for n, s in scope.specs.items() if s.role == "optimizer")
    opt = a.result(optimizer_node)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = opt.spec.torch_class(
        trainable, **torch_kwargs(opt.spec, opt.params), **kernel_choice(opt.spec.type, device)
    )

    final = [
        n
        for n, s in scope.specs.items()
        if s.role == "scheduler" and not any(e.source == n for e in scope.edges)
    ]
    scheduler = interval = monitor = None
    if final:
        top = a.result(final[0])
        interval = top.params["interval"]
        monitor = top.params.get("monitor")
        scheduler = _scheduler(a, scope, final[0], optimizer, settings, interval, 0)
    data_node = a.result(a.data_node)
    return TrainingPlan(
        compiled,
        model,
        losses,
        optimizer,
        scheduler,
        interval,
        monitor,
        settings,
        a.data,
        dict(data_node.params),
        {"type": opt.spec.type, **torch_kwargs(opt.spec, opt.params)},
    )


@dataclass(frozen=True)
class LossWiring:
    """One loss the optimizer sums: where its arguments come from, and its weight."""

    node_id: str
    label: str
    type: str
    weight: float
    sources: tuple[tuple[str, Any], ...]  # ("output", index) or ("data", "x" | "y")
    # CrossEntropyLoss / NLLLoss: 1, or -1 where the scores have their classes last ((B, T, V)
    # logits): the module is then wrapped in ClassesLast
    class_dim: int = 1


def loss_wiring(a: Analysis, interface: ModelInterface) -> list[LossWiring]:
    scope = a.top.scope
    outputs = list(interface.outputs)
    optimizer = next(n for n, s in scope.specs.items() if s.role == "optimizer")
    terms = []
    for e in scope.incoming[optimizer]["loss"]:
        r = a.result(e.source)
        sources: list[tuple[str, Any]] = []
        for port in scope.in_ports[e.source]:
            src = scope.incoming[e.source][port.name][0]
            if scope.specs[src.source].role == "data":
                sources.append(("data", src.source_port))
            else:
                sources.append(("output", outputs.index((src.source, src.source_port))))
        terms.append(
            LossWiring(
                e.source,
                r.label,
                r.spec.type,
                float(r.params["loss_weight"]),
                tuple(sources),
                int(r.params.get("class_dim", 1)),
            )
        )
    return terms


def _loss_module(r: NodeResult) -> nn.Module:
    if r.spec.type == "CustomLoss":
        return custom_layer_factory(as_layer_params(r.spec.type, r.params))()
    module = r.spec.torch_class(**torch_kwargs(r.spec, r.params))
    return ClassesLast(module) if r.params.get("class_dim") == -1 else module


def _scheduler(a, scope, node_id: str, optimizer, settings: dict, interval: str, offset: int):
    r = a.result(node_id)
    params = dict(r.params)
    ctx = InferContext({}, {**settings, "interval": interval, "offset": offset})
    for p in r.spec.params:
        if p.infer is not None and p.name not in r.node.params:  # sizes follow this run's steps
            params[p.name] = p.infer(ctx)
            if params[p.name] is None:
                raise ValueError(f"{r.label}: {p.name} needs the number of steps per epoch")
    if r.spec.type == "SequentialLR":
        children = [
            _scheduler(
                a,
                scope,
                scope.incoming[node_id][port][0].source,
                optimizer,
                settings,
                interval,
                offset + (params["milestone"] if port == "then" else 0),
            )
            for port in ("first", "then")
        ]
        return r.spec.torch_class(optimizer, children, milestones=[params["milestone"]])
    return r.spec.torch_class(optimizer, **torch_kwargs(r.spec, params))
