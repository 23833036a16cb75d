"""Pixel accuracy and mean IoU of a per-pixel classifier (segmentation), accumulated over an
epoch in one confusion matrix on the tensors' device.

Definitions (over every pixel of every sample seen since reset(); pixels whose target is not a
class id in 0..K-1, such as CrossEntropyLoss's ignore_index, count nowhere):
- pixel accuracy = pixels whose arg-max class equals the target / pixels;
- IoU of class c = TP_c / (TP_c + FP_c + FN_c), from the whole epoch's counts (not a mean of
  per-batch or per-image IoUs);
- mean IoU = the mean of IoU_c over the classes present: those with TP_c + FP_c + FN_c > 0,
  i.e. found in the targets or predicted somewhere. A class absent from both is left out
  rather than counted as 0 or 1.
"""

from __future__ import annotations

import torch


class SegmentationMetrics:
    """Logits (B, K, *S) against targets (B, *S) of class ids; K classes on dim 1 as
    CrossEntropyLoss takes them."""

    def __init__(self, num_classes: int, device=None):
        self.k = int(num_classes)
        self.device = device
        self.reset()

    def reset(self) -> None:
        # confusion[t, p]: pixels of target class t predicted as p
        self.confusion = torch.zeros((self.k, self.k), dtype=torch.float64, device=self.device)

    @staticmethod
    def applies(pred: torch.Tensor, target: torch.Tensor) -> bool:
        """Class scores on dim 1 over the target's spatial dims, integer targets."""
        return (
            target.dim() >= 2
            and not target.is_floating_point()
            and pred.dim() == target.dim() + 1
            and pred.shape[0] == target.shape[0]
            and pred.shape[2:] == target.shape[1:]
        )

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        guess = pred.argmax(dim=1).reshape(-1)
        truth = target.reshape(-1).to(guess.device)
        counted = (truth >= 0) & (truth < self.k)
        cells = truth[counted] * self.k + guess[counted]
        self.confusion += (
            torch.bincount(cells, minlength=self.k * self.k)
            .reshape(self.k, self.k)
            .to(self.confusion)
        )

    def compute(self) -> dict[str, float]:
        c = self.confusion
        total = float(c.sum())
        if total == 0:
            return {}
        tp = c.diagonal()
        union = c.sum(dim=0) + c.sum(dim=1) - tp  # TP + FP + FN
        present = union > 0
        iou = tp[present] / union[present]
        return {"accuracy": float(tp.sum()) / total, "miou": float(iou.mean())}
