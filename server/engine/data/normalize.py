"""Input and target scaling, fit on the training split only.

Normalizer kinds, chosen from the training x:
  "features"  rank 2 float (N, F): per-feature mean / std
  "sequence"  rank 3 float (N, T, F): per-feature over samples and steps
  "images"    rank 4+ float (N, C, ...): per-channel
  "none"      integer inputs (token ids) and rank 1: left as they are
A standard deviation of zero (a constant feature) is replaced by 1.
"""

from __future__ import annotations

import torch

_EPS = 1e-12
_CHUNK = 4096  # samples per pass while fitting, to keep float64 copies small


def _safe_std(std: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(std) & (std > _EPS), std, torch.ones_like(std))


def _moments(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population std over `dims` (dim 0 included), in float64, two passes over
    chunks of samples."""
    n = x.shape[0]
    count = 0
    total = None
    for start in range(0, n, _CHUNK):
        part = x[start : start + _CHUNK].double()
        s = part.sum(dim=dims)
        total = s if total is None else total + s
        count += part.numel() // s.numel()
    assert total is not None
    mean = total / count
    sq = None
    for start in range(0, n, _CHUNK):
        part = x[start : start + _CHUNK].double()
        d = (part - _expand(mean, part.dim(), dims)).pow_(2).sum(dim=dims)
        sq = d if sq is None else sq + d
    assert sq is not None
    return mean, (sq / count).sqrt()


def _expand(stat: torch.Tensor, rank: int, dims: tuple[int, ...]) -> torch.Tensor:
    """Reshape a reduced statistic so that it broadcasts against a rank-`rank` tensor."""
    shape = [1] * rank
    kept = [d for d in range(rank) if d not in dims]
    for d, size in zip(kept, stat.shape, strict=True):
        shape[d] = size
    return stat.reshape(shape)


class Normalizer:
    def __init__(
        self, kind: str, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
    ):
        if kind not in ("features", "sequence", "images", "none"):
            raise ValueError(f"unknown normalizer kind {kind!r}")
        self.kind = kind
        self.mean = mean  # shaped to broadcast against (N, ...) inputs, batch dim of size 1
        self.std = std

    @staticmethod
    def kind_for(x: torch.Tensor) -> str:
        if not x.is_floating_point() or x.dim() < 2:
            return "none"
        return {2: "features", 3: "sequence"}.get(x.dim(), "images")

    @classmethod
    def fit(cls, x: torch.Tensor) -> Normalizer:
        kind = cls.kind_for(x)
        if kind == "none" or x.shape[0] == 0:
            return cls("none")
        dims = {"features": (0,), "sequence": (0, 1)}.get(kind, (0, *range(2, x.dim())))
        mean, std = _moments(x, dims)
        rank = x.dim()
        return cls(
            kind,
            _expand(mean, rank, dims).float(),
            _expand(_safe_std(std), rank, dims).float(),
        )

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "none" or self.mean is None or self.std is None:
            return x
        mean = self.mean.to(device=x.device, dtype=x.dtype)
        std = self.std.to(device=x.device, dtype=x.dtype)
        return (x - mean) / std

    __call__ = apply

    def state_dict(self) -> dict[str, torch.Tensor | str]:
        out: dict[str, torch.Tensor | str] = {"kind": self.kind}
        if self.mean is not None and self.std is not None:
            out["mean"], out["std"] = self.mean.clone(), self.std.clone()
        return out

    @classmethod
    def from_state_dict(cls, d) -> Normalizer:
        kind = str(d["kind"])
        if kind == "none":
            return cls("none")
        return cls(kind, torch.as_tensor(d["mean"]).float(), torch.as_tensor(d["std"]).float())

    def __repr__(self) -> str:
        shape = None if self.mean is None else tuple(self.mean.shape)
        return f"Normalizer(kind={self.kind!r}, stats_shape={shape})"


class TargetScaler:
    """Regression targets: per-column mean / std fit on the training y."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        self.mean, self.std = mean, std  # (k,)

    @classmethod
    def fit(cls, y: torch.Tensor) -> TargetScaler:
        y2 = y.reshape(y.shape[0], -1) if y.dim() != 1 else y[:, None]
        mean, std = _moments(y2, (0,))
        return cls(mean.float(), _safe_std(std).float())

    def _shaped(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = t.to(device=y.device, dtype=y.dtype)
        return t.reshape(()) if y.dim() == 1 and t.numel() == 1 else t.reshape(y.shape[1:])

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self._shaped(self.mean, y)) / self._shaped(self.std, y)

    __call__ = apply

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._shaped(self.std, y) + self._shaped(self.mean, y)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "std": self.std.clone()}

    @classmethod
    def from_state_dict(cls, d) -> TargetScaler:
        return cls(torch.as_tensor(d["mean"]).float(), torch.as_tensor(d["std"]).float())

    def __repr__(self) -> str:
        return f"TargetScaler(columns={self.mean.numel()})"
