"""The validation pass at the end of each epoch: the loss (and its named parts) over the
held-out split in model.eval() under torch.inference_mode(), and the metrics of each loss term
that compares an output with the data's targets."""

from __future__ import annotations

import torch

from graph_compiler.plan import TrainingPlan

from .batching import Feeder
from .metrics import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, TermMetrics
from .steps import StepContext
from .token_metrics import TokenMetrics


def metric_terms(
    plan: TrainingPlan, target_scaler, device: torch.device
) -> list[tuple[int, TermMetrics | TokenMetrics]]:
    """(loss term index, its metrics) for each term against the targets whose loss says what
    kind of task it is; regression metrics are reported in the targets' own units, a language
    model's as token accuracy and perplexity."""
    terms = []
    scale = None
    if target_scaler is not None:
        scale = (target_scaler.mean, target_scaler.std)
    for i, term in enumerate(plan.losses):
        loss_type = term.type
        if ("data", "y") not in term.sources:
            continue
        if loss_type in CLASSIFICATION_LOSSES and plan.data.task == "language_model":
            terms.append((i, TokenMetrics.for_loss(term.module, device)))
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
                    kind, plan.data.num_classes, device, scale if kind == "regression" else None
                ),
            )
        )
    return terms


@torch.inference_mode()
def validate(
    plan: TrainingPlan,
    feed: Feeder,
    n_val: int,
    step_ctx: StepContext,
    terms: list[tuple[int, TermMetrics | TokenMetrics]],
    device: torch.device,
) -> dict[str, float]:
    """The epoch record's val_* entries (none without a validation split)."""
    if n_val == 0:
        return {}
    model = plan.model
    model.eval()
    for _, m in terms:
        m.reset()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    parts_sum: dict[str, torch.Tensor] = {}
    for xb, yb in feed.epoch(torch.arange(n_val)):
        batch = {"x": xb, "y": yb}
        with step_ctx.autocast():
            outputs = plan.forward(batch)
            loss, parts = plan.compute_loss(outputs, batch)
        n = xb.shape[0]
        total += loss.double() * n
        count += n
        for name, value in parts.items():
            parts_sum[name] = parts_sum.get(name, 0) + value.double() * n
        for index, metric in terms:
            term = plan.losses[index]
            pred = next(outputs[ref] for kind, ref in term.sources if kind == "output")
            metric.update(pred.float(), yb)
    out = {"val_loss": float(total) / count}
    if len(parts_sum) > 1:
        for name, value in parts_sum.items():
            out[f"val_loss/{name}"] = float(value) / count
    for _, metric in terms:
        out.update({f"val_{k}": v for k, v in metric.compute().items()})
    return out
