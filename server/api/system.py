"""Devices, versions and the run queue."""

from __future__ import annotations

import platform

import torch
from flask import Blueprint, jsonify

from ..storage import space
from .common import config, services

bp = Blueprint("system", __name__, url_prefix="/api")


@bp.get("/system")
def system():
    devices = [{"name": "cpu", "kind": "cpu"}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append(
                {
                    "name": f"cuda:{i}",
                    "kind": "cuda",
                    "label": props.name,
                    "memory_mb": props.total_memory // 2**20,
                }
            )
    runner = services().runner
    return jsonify(
        {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cuda": torch.version.cuda,
            "devices": devices,
            "allow_custom_code": config().allow_custom_code,
            "queue": runner.queue_state() if runner is not None else None,
            "storage": space.report(services()),
        }
    )
