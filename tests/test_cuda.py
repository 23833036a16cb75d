"""CUDA-only paths: the whole-step CUDA graph, bf16 and fp16 precision, memory reporting.

Skipped without CUDA (CI has none); run on a GPU machine with `pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import pytest
import torch

from server.engine.trainer import Trainer
from tests.helpers import chain, set_params

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def mlp(**training) -> dict:
    doc = chain(
        "digits",
        [
            ("fc1", "Linear", {"out_features": 64}),
            ("a", "ReLU", {}),
            ("fc2", "Linear", {"out_features": 10}),
        ],
    )
    return set_params(doc, "train", epochs=3, batch_size=100, device="cuda", seed=0, **training)


def run(doc, **kw):
    t = Trainer(doc, **kw)
    events = []
    t.events.subscribe(events.append)
    result = t.run()
    assert result.status == "finished", result.reason
    return t, result, [e.data["loss"] for e in events if e.type == "step"]


def test_whole_step_cuda_graph_matches_eager():
    # 1438 training samples / batch 100: the last batch (38) gets a graph of its own
    torch.backends.cuda.matmul.allow_tf32 = False
    g, gr, graph_losses = run(mlp(), cuda_graphs="on")
    e, er, eager_losses = run(mlp(), cuda_graphs="off")
    assert g.step_mode == "whole-step CUDA graph" and e.step_mode.startswith("eager")
    assert len(graph_losses) == len(eager_losses) == 3 * 15
    torch.testing.assert_close(
        torch.tensor(graph_losses), torch.tensor(eager_losses), rtol=1e-4, atol=1e-5
    )
    assert gr.history[-1]["val_accuracy"] == pytest.approx(er.history[-1]["val_accuracy"], abs=0.01)


def test_cuda_graph_follows_a_per_step_scheduler():
    doc = mlp()
    doc["nodes"].append(
        {"id": "sched", "type": "OneCycleLR", "params": {"max_lr": 0.01, "cycle_momentum": False}}
    )
    doc["edges"].append(
        {"source": "opt", "source_port": "optimizer", "target": "sched", "target_port": "optimizer"}
    )
    g, _, graph_losses = run(doc, cuda_graphs="on")
    _, _, eager_losses = run(doc, cuda_graphs="off")
    assert g.step_mode == "whole-step CUDA graph"
    torch.testing.assert_close(
        torch.tensor(graph_losses), torch.tensor(eager_losses), rtol=1e-4, atol=1e-5
    )


def test_losses_read_from_the_device_buffer_in_order_when_it_refills():
    g, _, graph_losses = run(mlp(), cuda_graphs="on", flush_steps=7)  # a buffer of 7 slots
    _, _, eager_losses = run(mlp(), cuda_graphs="off")
    assert g.step_mode == "whole-step CUDA graph"
    torch.testing.assert_close(
        torch.tensor(graph_losses), torch.tensor(eager_losses), rtol=1e-4, atol=1e-5
    )


def test_bf16_and_fp16_train_on_cuda():
    for precision in ("bf16", "fp16"):
        t, result, _ = run(set_params(mlp(precision=precision), "train", epochs=8))
        assert result.history[-1]["val_accuracy"] > 0.85
        assert t.placement.precision == precision
    assert t.step_mode.startswith("eager")  # fp16's GradScaler keeps the eager step
    assert result.history[-1]["peak_memory_mb"] > 0


def test_cnn_graph_with_batchnorm_and_dropout_trains():
    doc = chain(
        "digits_images",
        [
            ("c", "Conv2d", {"out_channels": 16, "padding": 1}),
            ("bn", "BatchNorm2d", {}),
            ("r", "ReLU", {}),
            ("d", "Dropout", {"p": 0.1}),
            ("f", "Flatten", {}),
            ("fc", "Linear", {"out_features": 10}),
        ],
    )
    set_params(doc, "train", epochs=5, batch_size=64, device="cuda", precision="bf16")
    t, result, _ = run(doc)
    assert t.step_mode == "whole-step CUDA graph"
    assert result.history[-1]["val_accuracy"] > 0.9
