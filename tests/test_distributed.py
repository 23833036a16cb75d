"""Data parallel on CPU: torchrun with 2 gloo processes gives the single-process weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from server.engine.checkpoint import load_checkpoint
from server.engine.trainer import Trainer
from tests.helpers import chain, set_params


def graph() -> dict:
    # no dropout or batch norm: those legitimately differ per rank
    doc = chain(
        "digits",
        [
            ("fc1", "Linear", {"out_features": 32}),
            ("a", "Tanh", {}),
            ("fc2", "Linear", {"out_features": 10}),
        ],
    )
    return set_params(doc, "train", epochs=2, batch_size=128, device="cpu", seed=1)


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    single = Trainer(graph(), out_dir=tmp_path / "single")
    assert single.run().status == "finished"
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "server.cli",
        "train",
        str(path),
        "--gpus",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "ddp"),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    a = load_checkpoint(tmp_path / "single" / "checkpoints" / "epoch-0002.pt")["model"]
    b = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "epoch-0002.pt")["model"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=0)
    events = (tmp_path / "ddp" / "events.jsonl").read_text().splitlines()
    started = json.loads(events[0])
    assert started["type"] == "run_started" and started["data"]["world_size"] == 2
