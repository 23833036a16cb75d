"""Warm start: a run's model starts from a weights file instead of its seeded init."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .run_document import RunFailed


def load_initial_weights(
    model: nn.Module,
    compiled,
    overrides: Mapping[str, Any],
    out_dir: Path | None,
    log: Callable[[str], None],
) -> None:
    """Load overrides["init_weights"] (relative to the run folder) into MODEL; with
    init_partial, the tensors that do not match stay at their initial values."""
    from graph_compiler.weights import WeightsError, load_into, node_owners, read_weights_file

    path = Path(str(overrides["init_weights"]))
    if not path.is_absolute() and out_dir is not None:
        path = out_dir / path
    partial = bool(overrides.get("init_partial"))
    try:
        given = read_weights_file(path)
        owners = node_owners(compiled.attributes)
        report = load_into(model, given, owners, partial=partial)
    except WeightsError as exc:
        raise RunFailed(exc.code, f"initial weights {path.name}: {exc}") from None
    skipped = len(report.missing) + len(report.wrong_shape)
    log(
        f"started from the weights in {path.name}: {len(report.matched)} tensors loaded"
        + (f", {skipped} left at their initial values (partial loading)" if skipped else "")
    )
