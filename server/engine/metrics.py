"""Per-epoch metrics, accumulated on the device so that no training step waits for the host."""

from __future__ import annotations

import torch

from .regression_metrics import RegressionMetrics
from .segmentation_metrics import SegmentationMetrics

CLASSIFICATION_LOSSES = ("CrossEntropyLoss", "NLLLoss")
REGRESSION_LOSSES = ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss")


class TermMetrics:
    """Accuracy (and top-5 where classes > 5), or MAE, RMSE and R², for one loss term; a
    per-pixel classifier (logits (B, K, H, W), targets (B, H, W)) gets pixel accuracy and mean
    IoU instead (segmentation_metrics.py)."""

    def __init__(
        self,
        kind: str,
        num_classes: int | None,
        device: torch.device,
        target_scale: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        self.kind = kind
        self.topk = 5 if kind == "classification" and (num_classes or 0) > 5 else 0
        self.device = device
        self.scale = target_scale  # (mean, std) to report regression errors in the data's units
        self.regression = RegressionMetrics(device)
        self.dense = SegmentationMetrics(num_classes, device) if num_classes else None
        self.reset()

    def reset(self) -> None:
        z = lambda: torch.zeros((), dtype=torch.float64, device=self.device)  # noqa: E731
        self.n, self.correct, self.top = z(), z(), z()
        self.regression.reset()
        if self.dense is not None:
            self.dense.reset()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if self.kind == "classification":
            if self.dense is not None and SegmentationMetrics.applies(pred, target):
                self.dense.update(pred, target)
                return
            if pred.dim() != 2 or target.dim() != 1 or target.is_floating_point():
                return
            self.n += target.numel()
            self.correct += (pred.argmax(dim=1) == target).sum()
            if self.topk:
                top = pred.topk(self.topk, dim=1).indices
                self.top += (top == target[:, None]).any(dim=1).sum()
        elif self.kind == "regression":
            if pred.shape != target.shape:
                return
            p, t = pred.detach().double(), target.double()
            if self.scale is not None:
                mean, std = (s.to(p.device, torch.float64) for s in self.scale)
                p, t = p * std + mean, t * std + mean
            self.regression.update(p, t)

    def compute(self) -> dict[str, float]:
        if self.kind == "regression":
            return self.regression.compute()
        n = float(self.n)
        if n == 0:
            return self.dense.compute() if self.dense is not None else {}
        out = {"accuracy": float(self.correct) / n}
        if self.topk:
            out[f"top{self.topk}"] = float(self.top) / n
        return out
