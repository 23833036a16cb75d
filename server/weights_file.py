"""An uploaded weights file read and checked against a model, in a limited child process.

A .pt or .safetensors upload is untrusted bytes: reading it (torch.load(weights_only=True) or
safetensors) allocates every tensor it declares, up to the upload limit and more. Like every
uploaded file (server/storage/datasets.py), it is parsed outside the web process: in a child
with an address-space and a time limit (server/limited.py). The child gets the model's
state_dict as plain shapes (built in an analysis process, server/model_state.py), compares the
file with it key by key (graph_compiler.weights.check), writes the tensors to keep as
.safetensors when asked, and sends back only the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ApiError

GiB = 2**30
MEMORY_BYTES = 4 * GiB  # address space for reading and checking one file (uploads ≤ 512 MiB)
SECONDS = 300.0


def check_file_task(
    path_text: str,
    filename: str,
    state: dict[str, tuple[tuple[int, ...], str]],
    owners: dict[str, str],
    partial: bool,
    out_text: str | None,
) -> dict:
    """The report ({"report": ..., "tensors": n}) of the file at `path_text` (shown to the user
    as `filename`) against the model `state`; with `out_text`, the matching tensors are written
    there as .safetensors. ApiError 422 when the file cannot be read or does not fit."""
    from graph_compiler.weights import WeightsError, check, read_weights

    from .model_state import meta_state

    try:
        given = read_weights(Path(path_text).read_bytes(), filename)
        selected, report = check(meta_state(state), given, owners, partial=partial)
    except WeightsError as exc:
        details = exc.report.to_dict() if exc.report is not None else None
        raise ApiError(422, exc.code, str(exc), details) from None
    if out_text is not None:
        from safetensors.torch import save_file

        from graph_compiler.weights import savable

        save_file(savable(selected), out_text)
    return {"report": report.to_dict(), "tensors": len(selected)}


def check_file(
    path: Path,
    filename: str,
    state: dict[str, Any],
    owners: dict[str, str],
    partial: bool,
    out: Path | None = None,
) -> dict:
    """check_file_task in a limited child; its limits become a 413 that names the file."""
    from . import limited

    try:
        return limited.call(
            check_file_task,
            str(path),
            filename,
            state,
            owners,
            partial,
            str(out) if out is not None else None,
            memory_bytes=MEMORY_BYTES,
            seconds=SECONDS,
            what=f"reading {filename}",
        )
    except limited.LimitExceeded as exc:
        code = "too_slow" if exc.kind == "time" else "too_large"
        raise ApiError(413, code, f"{exc}; upload a smaller file") from None
    except limited.ChildFailed as exc:
        raise ApiError(422, "bad_weights", f"{filename} cannot be read ({exc})") from None
