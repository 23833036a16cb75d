"""The event stream: encoding, chunked delivery, isolation from slow or broken consumers."""

from __future__ import annotations

import json
import math
import time

import pytest

from server.engine.events import DISPATCH_CHUNK, Event, EventBus


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
