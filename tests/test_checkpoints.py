"""Checkpoint retention (the last N and the best epoch's) and the run folders' quota
(issue 11, item 6: every checkpoint used to be kept, 1.15 GB a minute for the example MLP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.engine.checkpoint import CheckpointQuota, load_checkpoint
from server.engine.trainer import Trainer
from tests.helpers import chain, set_params

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def tiny(epochs: int, **training) -> dict:
    doc = chain("digits", [("fc", "Linear", {"out_features": 10})])
    return set_params(doc, "train", epochs=epochs, batch_size=256, seed=1, **training)


def scripted(trainer: Trainer, metrics: list[dict]) -> Trainer:
    """Validation reports `metrics[epoch - 1]`: the best epoch is known in advance."""
    trainer._validate = lambda: dict(metrics[trainer.epoch - 1])
    return trainer


def kept(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").iterdir())


ACCURACY = [0.1, 0.5, 0.9, 0.3, 0.2, 0.4, 0.35, 0.3]  # best: epoch 3 (higher is better)
LOSS = [0.9, 0.5, 0.7, 0.2, 0.6, 0.8, 0.7, 0.9]  # best: epoch 4 (lower is better)


@pytest.mark.parametrize(
    ("metrics", "best"),
    [
        ([{"val_accuracy": a, "val_loss": 1.0} for a in ACCURACY], 3),
        ([{"val_loss": v} for v in LOSS], 4),
    ],
    ids=["val_accuracy", "val_loss"],
)
def test_only_the_last_n_and_the_best_checkpoint_remain(tmp_path, metrics, best):
    out = tmp_path / "run"
    t = scripted(Trainer(tiny(8, checkpoint_every=1), out_dir=out), metrics)
    assert t.run().status == "finished"
    # keep_checkpoints defaults to 2: epochs 7 and 8, and the best epoch's
    assert kept(out) == sorted([f"epoch-{best:04d}.pt", "epoch-0007.pt", "epoch-0008.pt"])
    state = load_checkpoint(out / "checkpoints" / f"epoch-{best:04d}.pt")
    assert state["epoch"] == best  # really that epoch's weights, not a renamed later file


def test_keep_checkpoints_setting_and_resume_from_the_kept_last(tmp_path):
    metrics = [{"val_accuracy": a} for a in ACCURACY]
    out = tmp_path / "run"
    doc = tiny(8, checkpoint_every=1, keep_checkpoints=1)
    first = scripted(Trainer(doc, out_dir=out, stop_at_epoch=5), metrics).run()
    assert first.status == "stopped" and first.epochs_done == 5
    assert kept(out) == ["epoch-0003.pt", "epoch-0005.pt"]
    second = scripted(Trainer(doc, out_dir=out, resume=first.checkpoint), metrics).run()
    assert second.status == "finished" and second.epochs_done == 8
    # the resumed run still knows epoch 3 was the best and keeps it
    assert kept(out) == ["epoch-0003.pt", "epoch-0008.pt"]
    assert [h["epoch"] for h in second.history] == list(range(1, 9))


def test_a_real_run_keeps_bounded_files(tmp_path):
    out = tmp_path / "run"
    t = Trainer(tiny(12, checkpoint_every=1, keep_checkpoints=3), out_dir=out)
    assert t.run().status == "finished"
    names = kept(out)
    assert 3 <= len(names) <= 4 and "epoch-0012.pt" in names
    best = max(t.history, key=lambda h: (h["val_accuracy"], -h["epoch"]))["epoch"]
    assert f"epoch-{best:04d}.pt" in names


def test_the_quota_fails_the_run_with_a_clear_reason_and_it_resumes(tmp_path):
    out = tmp_path / "runs" / "run"
    doc = tiny(6, checkpoint_every=1, keep_checkpoints=10)
    probe = Trainer(tiny(1), out_dir=tmp_path / "probe")
    assert probe.run().status == "finished"
    size = (tmp_path / "probe" / "checkpoints" / "epoch-0001.pt").stat().st_size
    # room for the static files and two checkpoints, not three
    quota = CheckpointQuota(tmp_path / "runs", int(2.6 * size) + 4 * 2**10)
    seen: list = []
    t = Trainer(doc, out_dir=out, checkpoint_quota=quota)
    t.events.subscribe(seen.append)
    result = t.run()
    assert result.status == "failed"
    failed = seen[-1]
    assert failed.type == "failed" and failed.data["code"] == "quota_exceeded"
    assert "checkpoint quota exceeded" in result.reason and "run_quota_bytes" in result.reason
    assert kept(out) == ["epoch-0001.pt", "epoch-0002.pt"]  # nothing half-written
    # more room: it resumes from the last kept checkpoint and finishes
    bigger = CheckpointQuota(tmp_path / "runs", 100 * size)
    latest = out / "checkpoints" / "epoch-0002.pt"
    again = Trainer(doc, out_dir=out, resume=latest, checkpoint_quota=bigger).run()
    assert again.status == "finished" and again.epochs_done == 6


@pytest.mark.parametrize(
    ("record", "judged_by"),
    [
        (
            {"val_loss": 1.2, "val_accuracy": 0.6, "val_perplexity": 3.3},
            ("val_perplexity", 3.3, False),
        ),
        ({"val_loss": 0.3, "val_accuracy": 0.97, "val_miou": 0.7}, ("val_miou", 0.7, True)),
        ({"val_loss": 0.3, "val_accuracy": 0.9}, ("val_accuracy", 0.9, True)),
        ({"val_loss": 0.3, "val_r2": 0.8, "val_mae": 2.0}, ("val_r2", 0.8, True)),
        ({"val_loss": 0.3}, ("val_loss", 0.3, False)),
        ({"train_loss": 0.3}, None),
    ],
)
def test_a_run_is_judged_by_its_headline_metric(record, judged_by):
    """A language model's best epoch is its lowest perplexity, a segmentation model's its best
    mean IoU — not their token / pixel accuracy."""
    from server.engine.checkpoint import monitored

    assert monitored(record) == judged_by
