"""The data directory: server-generated names only, every path checked to stay inside it."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from ..errors import ApiError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_id() -> str:
    return secrets.token_hex(8)


def contained(root: Path, *parts: str) -> Path:
    """root/parts..., refusing anything that would leave root (.., absolute, NUL, links)."""
    for part in parts:
        if not part or "\x00" in part or "/" in part or "\\" in part or part in (".", ".."):
            raise ApiError(400, "bad_path", f"{part!r} is not a valid name")
    path = root.joinpath(*parts).resolve()
    base = root.resolve()
    if path != base and base not in path.parents:
        raise ApiError(400, "bad_path", "the path leaves the data directory")
    return path


def safe_download_name(name: str, suffix: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    return f"{stem[:80]}{suffix}"


class DataDir:
    def __init__(self, root: Path):
        self.root = root
        for sub in ("datasets", "runs", "uploads", "exports"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def datasets_root(self) -> Path:
        """Where uploaded datasets are stored: the only files a server run may read."""
        return self.root / "datasets"

    def run_dir(self, run_id: str) -> Path:
        return contained(self.root / "runs", run_id)

    def dataset_path(self, filename: str) -> Path:
        return contained(self.datasets_root, filename)
