"""Weights files read safely and checked against a model (warm start, fine-tuning, imports).

A weights file is a `.safetensors` file or a `.pt` state_dict, read only with safetensors or
`torch.load(weights_only=True)` (a torchloom checkpoint or a {"state_dict": ...} /
{"model": ...} wrapper is unwrapped). It is compared with the model's own state_dict key by
key: keys the model has and the file lacks (missing), keys the file has and the model does not
(unexpected), and keys whose shapes differ (wrong shape), each attributed to the graph node that
owns it. Loading is all-or-nothing unless partial loading is asked for, which loads exactly the
keys that fit and reports the rest.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

SAFETENSORS_SUFFIX = ".safetensors"
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


class WeightsError(Exception):
    def __init__(self, code: str, message: str, report: WeightsReport | None = None):
        super().__init__(message)
        self.code = code
        self.report = report


def read_weights(data: bytes, filename: str) -> dict[str, torch.Tensor]:
    """A state_dict from the bytes of a .safetensors or .pt file (CPU tensors)."""
    if filename.lower().endswith(SAFETENSORS_SUFFIX) or _looks_like_safetensors(data):
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            state = load(data)
        except (SafetensorError, ValueError, OSError) as exc:
            raise WeightsError(
                "bad_weights", f"{filename} is not a readable .safetensors file: {exc}"
            ) from None
        return dict(state)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            "bad_weights",
            f"{filename} cannot be read as a .pt state_dict with torch.load(weights_only=True) "
            f"(only tensors, no pickled code): {first[:300]}",
        ) from None
    return _state_dict_in(state, filename)


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError("weights_not_found", f"cannot read {path}: {exc.strerror}") from None
    return read_weights(data, path.name)


def savable(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state_dict as safetensors can write it: detached, contiguous CPU tensors, each with
    its own memory. safetensors refuses tensors that share memory, and a tied weight (a Linear
    head sharing an Embedding's table) is one tensor under two keys: the second key gets a copy,
    which loads back into the one shared parameter."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        storage = t.untyped_storage().data_ptr()
        if t.numel() and storage in seen:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out


def _looks_like_safetensors(data: bytes) -> bool:
    # 8-byte little-endian header length, then a JSON object
    return len(data) > 9 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") < len(data)


def _state_dict_in(obj, filename: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner:
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(
            "bad_weights", f"{filename} holds no state_dict (a mapping of names to tensors)"
        )
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise WeightsError(
            "bad_weights",
            f"{filename}: entries that are not tensors: {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""),
        )
    return {k: v for k, v in obj.items()}


@dataclass
class WeightsReport:
    matched: list[str] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)  # {"key", "node", "expected"}
    unexpected: list[dict] = field(default_factory=list)  # {"key", "node", "got"}
    wrong_shape: list[dict] = field(default_factory=list)  # {"key", "node", "expected", "got"}

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def by_node(self) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for kind in ("missing", "unexpected", "wrong_shape"):
            for item in getattr(self, kind):
                node = item["node"] or "(no node)"
                out.setdefault(node, {}).setdefault(kind, []).append(item["key"])
        return out

    def to_dict(self) -> dict:
        return {
            "matched": len(self.matched),
            "missing": self.missing,
            "unexpected": self.unexpected,
            "wrong_shape": self.wrong_shape,
            "by_node": self.by_node(),
        }

    def summary(self, limit: int = 6) -> str:
        """One line per problem (the first few): which node, which key, what was expected."""
        lines = []
        for item in self.wrong_shape:
            lines.append(
                f"{_where(item)}{item['key']}: the model expects shape {item['expected']}, the "
                f"file has {item['got']}"
            )
        for item in self.missing:
            lines.append(
                f"{_where(item)}{item['key']} (shape {item['expected']}) is missing from the file"
            )
        for item in self.unexpected:
            lines.append(f"{_where(item)}{item['key']} is in the file but not in the model")
        more = f"; and {len(lines) - limit} more" if len(lines) > limit else ""
        return "; ".join(lines[:limit]) + more


def _where(item: dict) -> str:
    return f"node {item['node']}: " if item["node"] else ""


def node_owners(attributes: Mapping[str, str]) -> dict[str, str]:
    """Submodule name → node id (compiled.attributes maps node id → submodule name)."""
    return {attr: node_id for node_id, attr in attributes.items()}


def compare(
    model_state: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    owners: Mapping[str, str],
) -> WeightsReport:
    report = WeightsReport()

    def owner(key: str) -> str | None:
        return owners.get(key.split(".", 1)[0])

    for key, value in model_state.items():
        if key not in given:
            report.missing.append({"key": key, "node": owner(key), "expected": list(value.shape)})
        elif tuple(given[key].shape) != tuple(value.shape):
            report.wrong_shape.append(
                {
                    "key": key,
                    "node": owner(key),
                    "expected": list(value.shape),
                    "got": list(given[key].shape),
                }
            )
        else:
            report.matched.append(key)
    for key, value in given.items():
        if key not in model_state:
            report.unexpected.append({"key": key, "node": owner(key), "got": list(value.shape)})
    return report


def check(
    model_state: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    owners: Mapping[str, str],
    *,
    partial: bool,
) -> tuple[dict[str, torch.Tensor], WeightsReport]:
    """(the tensors to load, the report); WeightsError when they do not fit and partial loading
    was not asked for, or when nothing at all fits."""
    report = compare(model_state, given, owners)
    if not report.matched:
        raise WeightsError(
            "weights_mismatch",
            "no tensor in the file fits the model: " + report.summary(),
            report,
        )
    if not report.exact and not partial:
        raise WeightsError(
            "weights_mismatch",
            "the weights do not fit the model (load only the matching tensors with partial "
            "loading): " + report.summary(),
            report,
        )
    selected = {}
    for key in report.matched:
        value = given[key]
        expected = model_state[key]
        if value.dtype != expected.dtype and not (
            value.is_floating_point() and expected.is_floating_point()
        ):
            raise WeightsError(
                "weights_mismatch",
                f"{_where({'node': owners.get(key.split('.', 1)[0])})}{key}: the model holds "
                f"{expected.dtype}, the file {value.dtype}",
                report,
            )
        selected[key] = value.to(expected.dtype)
    return selected, report


def load_into(
    model: nn.Module, given: Mapping[str, torch.Tensor], owners: Mapping[str, str], *, partial: bool
) -> WeightsReport:
    """Copy the weights into the model in place (parameters keep their identity, so an optimizer
    built on them still holds them)."""
    selected, report = check(model.state_dict(), given, owners, partial=partial)
    model.load_state_dict(selected, strict=report.exact)
    return report
