"""The Trainer's rooms tested on their own, against values written out by hand: where a
non-finite loss is reported, the order losses are read in, which checkpoints are kept as
best, the epoch record's fields and the run folder's preprocess.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from server.engine.epoch_record import epoch_record
from server.engine.run_checkpoints import Kept
from server.engine.run_document import RunFailed
from server.engine.run_folder import ENVIRONMENT_FILE, write_static_files
from server.engine.step_losses import check_finite, read_losses

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("step", "where"),
    [
        (1, "epoch 1 step 1"),
        (23, "epoch 1 step 23"),
        (24, "epoch 2 step 1"),
        (50, "epoch 3 step 4"),
    ],
)
def test_a_non_finite_loss_names_its_epoch_and_step(step, where):
    check_finite(1.5, step, 23)  # a finite loss passes
    with pytest.raises(RunFailed) as caught:
        check_finite(float("inf"), step, 23)
    assert caught.value.code == "non_finite_loss"
    assert str(caught.value) == f"non-finite loss at {where} (global step {step}): inf"


class _Ranks:
    """Two ranks whose other rank always reported 1.0 more."""

    world = 2

    def __init__(self):
        self.calls = 0

    def mean(self, values, device):
        self.calls += 1
        return [v + 0.5 for v in values]


def test_losses_are_read_device_recorded_first_then_pending_in_step_order():
    graphed = SimpleNamespace(drain=lambda: [1.0, 2.0])
    pending = [torch.tensor(3.0), torch.tensor(4.0)]
    assert read_losses(pending, graphed, SimpleNamespace(world=1), CPU) == [1.0, 2.0, 3.0, 4.0]
    assert read_losses(pending, object(), SimpleNamespace(world=1), CPU) == [3.0, 4.0]
    ranks = _Ranks()
    assert read_losses(pending, object(), ranks, CPU) == [3.5, 4.5]
    assert read_losses([], object(), ranks, CPU) == [] and ranks.calls == 1  # nothing to reduce


def test_a_rewritten_checkpoint_moves_last_and_the_best_changes_only_when_beaten():
    kept = Kept()
    a, b = Path("epoch-0001.pt"), Path("epoch-0002.pt")
    kept.wrote(a)
    kept.wrote(b)
    kept.wrote(a)  # a resumed run passing epoch 1 again
    assert kept.written == [b, a]
    assert kept.best_path() is None
    kept.consider_best(("val_loss", 0.5, False), a)
    kept.consider_best(("val_loss", 0.7, False), b)  # worse
    kept.consider_best(("val_loss", 0.5, False), b)  # a tie keeps the earlier one
    kept.consider_best(None, b)  # no metric this epoch
    assert kept.best_path() == a
    kept.consider_best(("val_loss", 0.4, False), b)
    assert kept.best_path() == b


def test_the_epoch_record_has_its_fields_in_event_order():
    record = epoch_record(
        epoch=2,
        losses=[1.0, 2.0],
        val={"val_loss": 0.5, "val_accuracy": 0.75},
        lr=0.1,
        samples=100,
        train_time=4.0,
        device=CPU,
        steps=8,
    )
    assert list(record) == [
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "lr",
        "samples_per_s",
        "epoch_time",
        "peak_memory_mb",
        "steps",
    ]
    assert (record["train_loss"], record["samples_per_s"], record["epoch_time"]) == (1.5, 25.0, 4.0)
    assert record["peak_memory_mb"] > 0
    empty = epoch_record(
        epoch=1, losses=[], val={}, lr=0.1, samples=0, train_time=0.0, device=CPU, steps=0
    )
    assert math.isnan(empty["train_loss"]) and empty["samples_per_s"] == 0.0


class _State:
    def __init__(self, **state):
        self.state = state

    def state_dict(self):
        return self.state


def test_preprocess_json_holds_tensors_as_lists(tmp_path):
    write_static_files(
        tmp_path,
        source="# model\n",
        document={"nodes": []},
        normalizer=_State(mean=torch.tensor([1.0, 2.0]), std=3.0),
        target_scaler=None,
        class_names=["a", "b"],
        task="classification",
        device=CPU,
    )
    assert (tmp_path / "preprocess.json").read_text() == (
        "{\n"
        '  "normalizer": {\n'
        '    "mean": [\n      1.0,\n      2.0\n    ],\n'
        '    "std": 3.0\n'
        "  },\n"
        '  "target_scaler": null,\n'
        '  "class_names": [\n    "a",\n    "b"\n  ],\n'
        '  "task": "classification"\n'
        "}\n"
    )
    assert (tmp_path / "model.py").read_text() == "# model\n"
    assert (tmp_path / "graph.json").read_text() == '{\n  "nodes": []\n}\n'
    environment = json.loads((tmp_path / ENVIRONMENT_FILE).read_text())
    assert environment == {
        "cpu_threads": torch.get_num_threads(),
        "device": "cpu",
        "torch": torch.__version__,
    }
