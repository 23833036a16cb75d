"""The event stream: encoding, chunked delivery, isolation from slow or broken consumers."""

from __future__ import annotations

import errno
import json
import math
import os
import time

import pytest

from server.engine.events import DISPATCH_CHUNK, Event, EventBus
from tests.helpers import mlp, set_params


@pytest.mark.parametrize(
    "data",
    [
        {"epoch": 1, "step": 2, "loss": 0.123456789, "lr": 1e-3},
        {"epoch": 3, "step": 40, "loss": 2.0, "lr": 0.1, "extra": [1, 2]},  # generic path
        {"epoch": 1, "step": 2, "loss": 1, "lr": 1e-3},  # an int loss: generic path
    ],
)
def test_to_json_is_the_generic_encoding(data):
    event = Event("step", 'run "7"', 12, 1764230000.123456, data)
    assert json.loads(event.to_json()) == event.to_dict()


def test_a_non_finite_step_still_encodes():
    event = Event("step", "r", 1, 1.0, {"epoch": 1, "step": 1, "loss": math.nan, "lr": 0.1})
    assert math.isnan(json.loads(event.to_json())["data"]["loss"])


def test_non_step_events_encode_like_json():
    event = Event("epoch", "r", 5, 2.5, {"epoch": 1, "val_accuracy": 0.9, "path": None})
    assert json.loads(event.to_json()) == event.to_dict()


def test_batched_consumers_get_everything_in_order_in_bounded_chunks():
    bus = EventBus("r")
    seen: list[list[int]] = []

    def consumer(events):
        seen.append([e.seq for e in events])

    consumer.batched = True
    bus.subscribe(consumer)
    for i in range(DISPATCH_CHUNK * 5 + 3):
        bus.emit("step", epoch=1, step=i + 1, loss=0.5, lr=0.1)
    bus.close()
    flat = [seq for chunk in seen for seq in chunk]
    assert flat == list(range(1, DISPATCH_CHUNK * 5 + 4))
    assert max(len(chunk) for chunk in seen) <= DISPATCH_CHUNK


def test_a_slow_consumer_never_blocks_emit_and_a_broken_one_is_reported():
    bus = EventBus("r")
    got = []

    def slow(event):
        time.sleep(0.01)
        got.append(event.seq)

    def broken(event):
        raise ValueError("disk full")

    bus.subscribe(slow)
    bus.subscribe(broken)
    started = time.perf_counter()
    for i in range(50):
        bus.emit("log", message=str(i))
    assert time.perf_counter() - started < 0.1  # 50 × 10 ms of consumer work not waited for
    bus.close()
    assert got == list(range(1, 51))
    assert bus.errors and "disk full" in bus.errors[0]


# --- a consumer that fails fails the run (issue 11, item 11) ------------------------------------


def test_a_failed_consumer_is_kept_as_the_failure_and_gets_nothing_more():
    bus = EventBus("r", dispatch_interval=0.001)
    calls = []

    def broken(event):
        calls.append(event.seq)
        raise OSError(28, "No space left on device")

    bus.subscribe(broken)
    bus.emit("log", message="a")
    assert bus.flush(10)  # flush() returns once everything emitted so far is delivered
    assert bus.failure == "broken: [Errno 28] No space left on device"
    bus.emit("log", message="b")
    bus.close()
    assert calls == [1]


class FullDisk:
    """A file that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, real, room: int):
        self.real, self.room = real, room

    def write(self, text: str) -> int:
        if len(text) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(text)
        return self.real.write(text)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_full_disk_writing_events_jsonl_fails_torchloom_train(tmp_path, monkeypatch, capsys):
    from server import cli as server_cli
    from server.engine import cli as engine_cli

    real_writer = engine_cli.RunFolderWriter

    class FillingWriter(real_writer):
        def __init__(self, out):
            super().__init__(out)
            self.events = FullDisk(self.events, room=4000)  # a few dozen events fit

    monkeypatch.setattr(engine_cli, "RunFolderWriter", FillingWriter)
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(set_params(mlp(), "train", epochs=3, batch_size=32)))
    status = server_cli.main(["train", str(graph), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "run folder: [Errno 28] No space left on device" in err
    assert "failed — recording the run's events failed: run folder: [Errno 28]" in err  # summary


def test_a_consumer_that_fails_on_the_last_event_still_fails_the_run():
    from server.engine.trainer import Trainer

    seen = []

    def refuses_the_end(event):
        seen.append(event.type)
        if event.type == "finished":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    trainer = Trainer(set_params(mlp(), "train", epochs=1))
    trainer.events.subscribe(refuses_the_end)
    result = trainer.run()
    assert seen[-1] == "finished"
    assert result.status == "failed"
    assert "refuses_the_end: [Errno 28] No space left on device" in result.reason


def test_a_consumer_failing_mid_run_stops_it_with_the_reason():
    from server.engine.trainer import Trainer

    received = []

    def breaks_at_step_5(event):
        if event.type == "step" and event.data["step"] == 5:
            raise RuntimeError("relay gone")

    trainer = Trainer(set_params(mlp(), "train", epochs=50, batch_size=16))
    trainer.flush_steps = 1  # checked at every flush: stop within a few steps
    trainer.events.subscribe(breaks_at_step_5)
    trainer.events.subscribe(received.append)
    result = trainer.run()
    assert result.status == "failed"
    assert result.reason == "recording the run's events failed: breaks_at_step_5: relay gone"
    assert received[-1].type == "failed" and received[-1].data["code"] == "event_consumer_failed"
    assert result.epochs_done < 50
