"""Room in the data directory: the free space of its disk and what the run folders hold, against
the server's limits (ServerConfig.min_free_bytes and run_quota_bytes). A run is refused before
it starts rather than failed half-way for want of space."""

from __future__ import annotations

from ..engine.diskspace import format_bytes, free_bytes, tree_bytes
from ..errors import ApiError


def report(services) -> dict:
    """For /api/system: free space and run folders' use, with the limits they are held to."""
    cfg = services.config
    return {
        "free_bytes": free_bytes(services.data.root),
        "min_free_bytes": cfg.min_free_bytes,
        "runs_bytes": tree_bytes(services.data.root / "runs"),
        "run_quota_bytes": cfg.run_quota_bytes,
    }


def check_room_for_run(services) -> None:
    """507 Insufficient Storage, naming what is free and what is needed, when a run cannot
    start: too little free space on the data directory's disk, or the run quota used up."""
    cfg = services.config
    free = free_bytes(services.data.root)
    if free < cfg.min_free_bytes:
        raise ApiError(
            507,
            "low_disk_space",
            f"not enough free disk space to start a run: {format_bytes(free)} free in the data "
            f"directory, {format_bytes(cfg.min_free_bytes)} needed (server setting "
            "min_free_bytes); delete old runs or datasets, or free space on that disk",
            {"free_bytes": free, "needed_bytes": cfg.min_free_bytes},
        )
    used = tree_bytes(services.data.root / "runs")
    if used >= cfg.run_quota_bytes:
        raise ApiError(
            507,
            "run_quota_exceeded",
            f"the run folders hold {format_bytes(used)}, the data directory's quota is "
            f"{format_bytes(cfg.run_quota_bytes)} (server setting run_quota_bytes); delete old "
            "runs or raise the quota",
            {"used_bytes": used, "quota_bytes": cfg.run_quota_bytes},
        )
