"""MAE, RMSE and R² of a regression, accumulated batch by batch on the tensors' device.

The one implementation of these figures: the engine's per-epoch metrics, the playground's
evaluation and the exported train.py (which gets this class's source copied in, see
exports/train_py/generate.py) all use it, so the three report the same numbers.

R² is scikit-learn's `r2_score` default: every value after the batch dimension is a target
column, each column gets 1 - SS_res / SS_tot, and the columns are averaged with equal weight.
A constant column scores 1.0 when predicted exactly and 0.0 otherwise (scikit-learn's
`force_finite`); it is found exactly (its minimum equals its maximum), where scikit-learn tests
a sum of squares around a rounded mean. Fewer than two samples give no R² (scikit-learn: NaN).
"""

from __future__ import annotations

import torch


class RegressionMetrics:
    """MAE, RMSE and R² (uniform average over target columns, as scikit-learn's r2_score).

    Nothing here reads a value back to the host before compute(): a training loop on a GPU
    never waits for it. SS_tot is merged per batch (Chan et al.), so targets with a large
    offset do not lose their variance to cancellation.
    """

    def __init__(self, device=None):
        self.device = device
        self.reset()

    def reset(self):
        self.rows = 0
        self.abs_err = torch.zeros((), dtype=torch.float64, device=self.device)
        self.sq_err = self.mean = self.m2 = self.low = self.high = None  # per column

    @torch.no_grad()
    def update(self, pred, target):
        """Add a batch: pred and target of the same shape, the first dimension the samples."""
        count = target.shape[0] if target.dim() else 1
        if count == 0:
            return
        p = pred.detach().to(torch.float64).reshape(count, -1)
        t = target.detach().to(torch.float64).reshape(count, -1)
        error = p - t
        batch_mean = t.mean(dim=0)
        batch_m2 = ((t - batch_mean) ** 2).sum(dim=0)
        if self.mean is None:
            self.sq_err = torch.zeros_like(batch_mean)
            self.mean, self.m2 = batch_mean, batch_m2
            self.low, self.high = t.amin(dim=0), t.amax(dim=0)
        else:
            total = self.rows + count
            delta = batch_mean - self.mean
            self.mean = self.mean + delta * (count / total)
            self.m2 = self.m2 + batch_m2 + delta**2 * (self.rows * count / total)
            self.low = torch.minimum(self.low, t.amin(dim=0))
            self.high = torch.maximum(self.high, t.amax(dim=0))
        self.sq_err = self.sq_err + (error**2).sum(dim=0)
        self.abs_err = self.abs_err + error.abs().sum()
        self.rows += count

    def compute(self):
        """{"mae", "rmse", "r2"} over every batch since reset(); {} before the first batch."""
        if self.rows == 0:
            return {}
        cells = self.rows * self.sq_err.numel()
        out = {
            "mae": float(self.abs_err) / cells,
            "rmse": (float(self.sq_err.sum()) / cells) ** 0.5,
        }
        if self.rows >= 2:
            constant = (self.high == self.low) | (self.m2 == 0)
            exact = (self.sq_err == 0).to(torch.float64)
            explained = 1.0 - self.sq_err / torch.where(constant, 1.0, self.m2)
            out["r2"] = float(torch.where(constant, exact, explained).mean())
        return out
