"""The training engine on CPU: determinism, exact resume, stop, failures, events, run folder."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch

from server.engine.checkpoint import load_checkpoint
from server.engine.trainer import Trainer
from tests.helpers import chain, set_params

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def small_mlp(epochs: int = 4, **training) -> dict:
    doc = chain(
        "digits",
        [
            ("fc1", "Linear", {"out_features": 32}),
            ("act", "ReLU", {}),
            ("drop", "Dropout", {"p": 0.2}),  # uses the RNG: resume must restore it
            ("fc2", "Linear", {"out_features": 10}),
        ],
        scheduler="StepLR",
        scheduler_params={"step_size": 2, "gamma": 0.5},
    )
    return set_params(doc, "train", epochs=epochs, batch_size=128, seed=3, **training)


def collect(trainer: Trainer) -> list:
    seen: list = []
    trainer.events.subscribe(seen.append)
    return seen


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_deterministic_on_cpu():
    losses = []
    for _ in range(2):
        t = Trainer(small_mlp(epochs=2))
        events = collect(t)
        assert t.run().status == "finished"
        losses.append([e.data["loss"] for e in events if e.type == "step"])
    assert losses[0] == losses[1] and len(losses[0]) == 2 * 12


def test_events_are_ordered_typed_and_complete():
    t = Trainer(small_mlp(epochs=2))
    events = collect(t)
    result = t.run()
    assert result.status == "finished"
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1))
    assert events[0].type == "run_started" and events[-1].type == "finished"
    assert {e.run_id for e in events} == {t.run_id}
    assert all(e.time > 0 for e in events)
    epochs = [e.data for e in events if e.type == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    for r in epochs:
        for key in (
            "train_loss",
            "val_loss",
            "val_accuracy",
            "val_top5",
            "lr",
            "samples_per_s",
            "epoch_time",
            "peak_memory_mb",
        ):
            assert key in r, key
    started = events[0].data
    assert started["device"] == "cpu" and "no CUDA" in started["device_reason"]


def test_stop_at_epoch_then_resume_gives_identical_weights(tmp_path):
    full = Trainer(small_mlp(), out_dir=tmp_path / "full")
    assert full.run().status == "finished"
    part = Trainer(small_mlp(), out_dir=tmp_path / "part", stop_at_epoch=2)
    first = part.run()
    assert first.status == "stopped" and first.epochs_done == 2
    rest = Trainer(small_mlp(), out_dir=tmp_path / "part", resume=first.checkpoint)
    second = rest.run()
    assert second.status == "finished" and second.epochs_done == 4
    a = weights(tmp_path / "full" / "checkpoints" / "epoch-0004.pt")
    b = weights(tmp_path / "part" / "checkpoints" / "epoch-0004.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [h["train_loss"] for h in second.history] == [h["train_loss"] for h in full.history]


def test_stop_mid_epoch_is_honoured_within_one_step_and_resumes_exactly(tmp_path):
    full = Trainer(small_mlp(epochs=2), out_dir=tmp_path / "full")
    full_events = collect(full)
    assert full.run().status == "finished"
    t = Trainer(small_mlp(epochs=2), out_dir=tmp_path / "part")
    calls = {"n": 0}
    setup = t._setup

    def setup_then_count_steps():
        setup()
        inner = t.step_fn

        def step(x, y, boundary):  # a stop request arrives during step 17
            calls["n"] += 1
            if calls["n"] == 17:
                t.request_stop()
            return inner(x, y, boundary)

        t.step_fn = step

    t._setup = setup_then_count_steps
    stopped = t.run()
    assert stopped.status == "stopped"
    assert calls["n"] == 17  # no step ran after the request
    assert Path(stopped.checkpoint).name == "step-0000017.pt"
    state = load_checkpoint(Path(stopped.checkpoint))
    assert state["position"] == 5 and state["epoch"] == 1
    resumed = Trainer(small_mlp(epochs=2), out_dir=tmp_path / "part", resume=stopped.checkpoint)
    resumed_events = collect(resumed)
    assert resumed.run().status == "finished"
    a = weights(tmp_path / "full" / "checkpoints" / "epoch-0002.pt")
    b = weights(tmp_path / "part" / "checkpoints" / "epoch-0002.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    full_losses = {e.data["step"]: e.data["loss"] for e in full_events if e.type == "step"}
    for e in resumed_events:
        if e.type == "step":
            assert e.data["loss"] == full_losses[e.data["step"]]


def test_non_finite_loss_stops_the_run_and_keeps_metrics(tmp_path):
    doc = small_mlp(epochs=3)
    loss = next(n for n in doc["nodes"] if n["id"] == "loss")
    loss["type"] = "CustomLoss"  # NaN on the 7th call, an ordinary cross-entropy otherwise
    loss["params"] = {
        "code": "self.calls = getattr(self, 'calls', 0) + 1\n"
        "scale = float('nan') if self.calls == 7 else 1.0\n"
        "return F.cross_entropy(input, target) * scale"
    }
    t = Trainer(doc, out_dir=tmp_path, allow_custom_code=True, flush_steps=4)
    events = collect(t)
    result = t.run()
    assert result.status == "failed"
    failed = events[-1]
    assert failed.type == "failed" and failed.data["code"] == "non_finite_loss"
    assert failed.data["reason"].startswith("non-finite loss at epoch 1 step 7")
    steps = [e.data["loss"] for e in events if e.type == "step"]
    assert len(steps) == 6 and all(math.isfinite(v) for v in steps)  # the good steps are kept


def test_bad_device_and_bad_override_fail_clearly():
    t = Trainer(small_mlp(), overrides={"device": "cuda:3"})
    events = collect(t)
    result = t.run()
    if torch.cuda.device_count() > 3:
        pytest.skip("this machine has 4+ GPUs")
    assert result.status == "failed"
    assert events[-1].data["code"] == "device_error"
    assert "cuda:3" in events[-1].data["reason"]
    t = Trainer(small_mlp(), overrides={"learning_rate": 1})
    assert t.run().status == "failed"


def test_invalid_graph_fails_with_the_validation_message():
    doc = small_mlp()
    set_params(doc, "fc2", out_features=0)
    t = Trainer(doc)
    events = collect(t)
    assert t.run().status == "failed"
    assert events[-1].data["code"] == "invalid_graph"
    assert "fc2" in events[-1].data["reason"]


def test_slow_consumer_does_not_block_the_engine():
    """A consumer stuck on the very first event: the engine still emits every event up to
    `finished` meanwhile. A bus that delivered inside emit() would stall the run on that first
    event, and the wait below would time out."""
    import threading

    t = Trainer(small_mlp(epochs=1))
    emitted: list[str] = []  # the engine's side, seen without subscribing
    emit = t.events.emit

    def recording_emit(type_, **data):
        emitted.append(type_)
        return emit(type_, **data)

    t.events.emit = recording_emit
    engine_finished_while_held = threading.Event()
    got = []

    def stuck_on_first(event):
        if not got:
            deadline = time.monotonic() + 60
            while "finished" not in emitted and time.monotonic() < deadline:
                time.sleep(0.01)
            if "finished" in emitted:
                engine_finished_while_held.set()
        got.append(event)

    t.events.subscribe(stuck_on_first)
    result = t.run()  # close() at the end waits for delivery; the loop itself did not
    assert result.status == "finished"
    assert engine_finished_while_held.is_set()
    assert [e.type for e in got] == emitted  # and the held consumer still got everything


def test_run_folder_and_checkpoint_contents(tmp_path):
    from server.cli import main

    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(small_mlp(epochs=2)))
    out = tmp_path / "run"
    assert main(["train", str(graph), "--out", str(out), "--quiet"]) == 0
    for name in (
        "model.py",
        "graph.json",
        "metrics.jsonl",
        "events.jsonl",
        "model.safetensors",
        "preprocess.json",
        "checkpoints/epoch-0002.pt",
    ):
        assert (out / name).exists(), name
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "finished"
    state = torch.load(out / "checkpoints" / "epoch-0002.pt", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "rng", "epoch", "step", "order"):
        assert key in state
    from safetensors.torch import load_file

    saved = load_file(str(out / "model.safetensors"))
    for key, value in state["model"].items():
        assert torch.equal(saved[key], value)
    # --resume from the CLI continues to more epochs
    assert (
        main(
            [
                "train",
                str(graph),
                "--out",
                str(out),
                "--quiet",
                "--epochs",
                "3",
                "--resume",
                str(out / "checkpoints" / "epoch-0002.pt"),
            ]
        )
        == 0
    )
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["epoch"] == 3


def _optimizer_steps(doc: dict) -> tuple[int, list[float]]:
    """Runs `doc`; the number of optimizer steps and the gradient norm each one saw, measured
    by a global step hook (independent of the engine's own accounting)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    norms: list[float] = []

    def hook(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    handle = register_optimizer_step_pre_hook(hook)
    try:
        t = Trainer(doc)
        result = t.run()
    finally:
        handle.remove()
    assert result.status == "finished", result.reason
    assert result.steps_done == 12  # 12 batches of 128 in an epoch of digits
    return len(norms), norms


def test_grad_accumulation_steps_the_optimizer_every_n_batches():
    assert _optimizer_steps(small_mlp(epochs=1))[0] == 12
    assert _optimizer_steps(small_mlp(epochs=1, grad_accumulation=2))[0] == 6
    assert _optimizer_steps(small_mlp(epochs=1, grad_accumulation=3))[0] == 4


def test_grad_clipping_bounds_the_norm_the_optimizer_sees():
    clip = 0.05
    _, free = _optimizer_steps(small_mlp(epochs=1))
    assert max(free) > 4 * clip  # without clipping the gradients are well above the bound
    _, clipped = _optimizer_steps(small_mlp(epochs=1, grad_clip=clip))
    assert max(clipped) <= clip * (1 + 1e-4)
    _, both = _optimizer_steps(small_mlp(epochs=1, grad_accumulation=2, grad_clip=clip))
    assert len(both) == 6 and max(both) <= clip * (1 + 1e-4)


def test_dataloader_path_matches_the_resident_path():
    fast = Trainer(small_mlp(epochs=1))
    slow = Trainer(small_mlp(epochs=1), overrides={"fast_path": False})
    fe, se = collect(fast), collect(slow)
    assert fast.run().status == "finished" and slow.run().status == "finished"
    assert slow.train_feed.mode.startswith("dataloader")
    f = [e.data["loss"] for e in fe if e.type == "step"]
    s = [e.data["loss"] for e in se if e.type == "step"]
    assert f == pytest.approx(s, rel=1e-6)


def test_out_of_memory_is_reported_with_the_batch_size():
    doc = small_mlp(epochs=1)
    # a layer that runs out of memory in training (but not on the meta device that shape
    # inference uses)
    code = (
        "if x.device.type != 'meta':\n"
        "    raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2 GiB')\n"
        "return x"
    )
    doc["nodes"].append(
        {"id": "boom", "type": "CustomLayer", "params": {"code": code, "parameters": []}}
    )
    for e in doc["edges"]:  # fc2 → boom → loss
        if e["source"] == "fc2":
            e["source"] = "boom"
    doc["edges"].append(
        {"source": "fc2", "source_port": "out", "target": "boom", "target_port": "x"}
    )
    t = Trainer(doc, allow_custom_code=True)
    events = collect(t)
    assert t.run().status == "failed"
    failed = events[-1]
    assert failed.data["code"] == "out_of_memory", failed.data
    assert "batch size 128" in failed.data["reason"]
    assert failed.data["batch_size"] == 128


def test_torch_compile_option_trains():
    t = Trainer(small_mlp(epochs=1), overrides={"compile": True})
    result = t.run()
    assert result.status == "finished", result.reason
    assert "torch.compile" in t.step_mode


def test_ctrl_c_stops_the_cli_cleanly_with_a_resumable_checkpoint(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(small_mlp(epochs=500)))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "train", str(graph), "--out", str(out), "--quiet"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    metrics = out / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    stopped = events[-1]
    assert stopped["type"] == "stopped", stopped
    checkpoint = Path(stopped["data"]["checkpoint"])
    assert checkpoint.exists()
    assert load_checkpoint(checkpoint)["epoch"] < 500
    assert "stopped" in stdout + stderr  # the summary (stderr with --quiet)


def test_the_run_states_the_precision_it_trained_in_and_why():
    """fp16 asked on the CPU: the run says bf16 and why, and bf16 is what the layers computed."""
    t = Trainer(small_mlp(epochs=1, precision="fp16"))
    seen_dtypes: set = set()
    events = collect(t)
    original = torch.nn.Linear.forward

    def spy(self, x):
        out = original(self, x)
        if torch.is_grad_enabled():
            seen_dtypes.add(out.dtype)
        return out

    torch.nn.Linear.forward = spy
    try:
        assert t.run().status == "finished"
    finally:
        torch.nn.Linear.forward = original
    assert seen_dtypes == {torch.bfloat16}
    started = next(e for e in events if e.type == "run_started").data
    assert started["precision"] == "bf16"
    assert started["precision_reason"] == (
        "fp16 autocast needs CUDA: bf16 autocast on the CPU instead"
    )
