"""build_plan: the model, losses, optimizer, scheduler and settings as real torch objects."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler

from graph_compiler import GraphCompileError, analyze, build_plan, validate
from tests.helpers import add, chain, edge, find_node, mlp, node, set_params

# digits: 1797 samples; val_split 0.2 → round(359.4) = 359 held out, 1438 for training;
# batch 64 → ceil(1438 / 64) = 23 optimizer steps per epoch.
DIGITS_TRAIN, DIGITS_VAL, DIGITS_STEPS = 1438, 359, 23


def _batch(n: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(n, 64, generator=g), "y": torch.randint(0, 10, (n,), generator=g)}


def _step(plan, batch=None) -> torch.Tensor:
    batch = batch or _batch()
    total, _ = plan.compute_loss(plan.forward(batch), batch)
    plan.optimizer.zero_grad()
    total.backward()
    plan.optimizer.step()
    return total


# --- model and optimizer -----------------------------------------------------------------------


def test_plan_basics():
    plan = build_plan(mlp(optimizer="SGD", optimizer_params={"lr": 0.05, "momentum": 0.9}))
    assert plan.compiled.interface.inputs == ("x",)
    assert [t.node_id for t in plan.losses] == ["loss"]
    assert plan.losses[0].sources == (("output", 0), ("data", "y"))
    assert isinstance(plan.optimizer, torch.optim.SGD)
    group = plan.optimizer.param_groups[0]
    assert group["lr"] == 0.05 and group["momentum"] == 0.9
    assert plan.optimizer_spec["type"] == "SGD" and plan.optimizer_spec["lr"] == 0.05
    assert plan.scheduler is None and plan.scheduler_interval is None
    assert plan.data.num_classes == 10
    assert plan.data_params["source"] == "digits"
    assert "class TestGraph" in plan.source
    loss = _step(plan)
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_plan_is_seeded():
    doc = set_params(mlp(), "train", seed=7)
    a, b = build_plan(doc), build_plan(doc)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)
    other = build_plan(set_params(mlp(), "train", seed=8))
    assert not torch.equal(next(a.model.parameters()), next(other.model.parameters()))


def test_frozen_node_is_left_out_of_the_optimizer():
    doc = mlp()
    find_node(doc, "fc1")["trainable"] = False
    a = analyze(doc)
    assert a.result("fc1").trainable_params == 0
    assert a.totals()["trainable_params"] == a.result("fc2").num_params
    plan = build_plan(doc)
    fc1, fc2 = plan.model.fc1, plan.model.fc2
    assert not any(p.requires_grad for p in fc1.parameters())
    assert all(p.requires_grad for p in fc2.parameters())
    optimized = {id(p) for g in plan.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in fc2.parameters()}
    before = fc1.weight.detach().clone()
    before2 = fc2.weight.detach().clone()
    _step(plan)
    assert torch.equal(fc1.weight, before)
    assert not torch.equal(fc2.weight, before2)


def test_frozen_block_node():
    res = {
        "nodes": [
            node("x", "Input"),
            node("fc", "Linear", {"out_features": 16}),
            node("out", "Output"),
        ],
        "edges": [edge("x", "fc"), edge("fc", "out")],
    }
    doc = chain(
        "digits",
        [("blk", "Block", {"block": "Res", "repeat": 2}), ("head", "Linear", {"out_features": 10})],
    )
    for e in doc["edges"]:
        if e["target"] == "blk":
            e["target_port"] = "x"
        if e["source"] == "blk":
            e["source_port"] = "out"
    doc["blocks"] = {"Res": res}
    find_node(doc, "blk")["trainable"] = False
    plan = build_plan(doc)
    assert not any(p.requires_grad for p in plan.model.blk.parameters())
    optimized = {id(p) for g in plan.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in plan.model.head.parameters()}


def _block_with_frozen_inner_node() -> dict:
    res = {
        "nodes": [
            node("x", "Input"),
            node("fc", "Linear", {"out_features": 16}, trainable=False),
            node("out", "Output"),
        ],
        "edges": [edge("x", "fc"), edge("fc", "out")],
    }
    doc = chain(
        "digits",
        [("blk", "Block", {"block": "Res"}), ("head", "Linear", {"out_features": 10})],
    )
    for e in doc["edges"]:
        if e["target"] == "blk":
            e["target_port"] = "x"
        if e["source"] == "blk":
            e["source_port"] = "out"
    doc["blocks"] = {"Res": res}
    return doc


def test_frozen_node_inside_a_block_is_counted_as_frozen():
    a = analyze(_block_with_frozen_inner_node())
    assert a.ok
    assert a.result("blk").num_params == 64 * 16 + 16
    assert a.result("blk").trainable_params == 0
    assert a.totals()["trainable_params"] == a.result("head").num_params


def test_frozen_node_inside_a_block_is_not_optimized():
    plan = build_plan(_block_with_frozen_inner_node())
    assert not any(p.requires_grad for p in plan.model.blk.parameters())
    optimized = {id(p) for g in plan.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in plan.model.head.parameters()}


def test_nothing_to_train_is_a_validation_error():
    doc = mlp()
    for node_id in ("fc1", "fc2"):
        find_node(doc, node_id)["trainable"] = False
    errors = [p for p in validate(doc) if p["severity"] == "error"]
    assert errors and errors[0]["node"] == "opt"


def test_label_training_does_not_shadow_module_state():
    doc = mlp()
    find_node(doc, "fc1")["label"] = "training"
    plan = build_plan(doc)
    plan.model.eval()
    assert plan.model.training is False
    plan.model.train()
    _step(plan)


# --- losses ------------------------------------------------------------------------------------


def _multitask() -> dict:
    """digits → trunk → cls (10) → CE(y) ×0.3, and trunk → recon (64) → MSE(x) ×2.0."""
    doc = chain(
        "digits",
        [("trunk", "Linear", {"out_features": 16}), ("cls", "Linear", {"out_features": 10})],
        loss_params={"loss_weight": 0.3},
    )
    return add(
        doc,
        node("recon", "Linear", {"out_features": 64}),
        node("mse", "MSELoss", {"loss_weight": 2.0}),
        edge("trunk", "recon"),
        edge("recon", "mse", "out", "input"),
        edge("data", "mse", "x", "target"),
        edge("mse", "opt", "loss", "loss"),
    )


def test_multitask_loss_is_the_weighted_sum():
    doc = _multitask()
    assert validate(doc) == []
    plan = build_plan(doc)
    assert plan.compiled.interface.outputs == (("cls", "out"), ("recon", "out"))
    assert [(t.node_id, t.weight) for t in plan.losses] == [("loss", 0.3), ("mse", 2.0)]
    assert plan.losses[1].sources == (("output", 1), ("data", "x"))
    batch = _batch()
    outputs = plan.forward(batch)
    total, parts = plan.compute_loss(outputs, batch)
    ce = F.cross_entropy(outputs[0], batch["y"])
    mse = F.mse_loss(outputs[1], batch["x"])
    assert torch.allclose(parts["loss"], ce)
    assert torch.allclose(parts["mse"], mse)
    assert torch.allclose(total, 0.3 * ce + 2.0 * mse)
    total.backward()
    assert plan.model.trunk.weight.grad is not None


def test_loss_params_reach_torch():
    plan = build_plan(mlp(loss_params={"label_smoothing": 0.1, "weight": [1.0] * 10}))
    module = plan.losses[0].module
    assert module.label_smoothing == 0.1
    assert torch.equal(module.weight, torch.ones(10))


# --- schedulers --------------------------------------------------------------------------------


def test_settings_from_the_dataset():
    a = analyze(mlp())
    s = a.settings
    assert (s["train_samples"], s["val_samples"], s["steps_per_epoch"]) == (
        DIGITS_TRAIN,
        DIGITS_VAL,
        DIGITS_STEPS,
    )
    s = analyze(mlp(training={"grad_accumulation": 2, "batch_size": 32})).settings
    assert s["steps_per_epoch"] == math.ceil(math.ceil(DIGITS_TRAIN / 32) / 2)


def test_cosine_t_max_is_the_number_of_epochs():
    plan = build_plan(mlp(scheduler="CosineAnnealingLR", training={"epochs": 7}))
    assert isinstance(plan.scheduler, lr_scheduler.CosineAnnealingLR)
    assert plan.scheduler.T_max == 7
    assert plan.scheduler_interval == "epoch"
    a = analyze(mlp(scheduler="CosineAnnealingLR", training={"epochs": 7}))
    assert a.result("sched").inferred == {"T_max": 7}


def test_cosine_per_step_spans_the_run():
    doc = mlp(
        scheduler="CosineAnnealingLR",
        scheduler_params={"interval": "step"},
        training={"epochs": 3},
    )
    plan = build_plan(doc)
    assert plan.scheduler.T_max == 3 * DIGITS_STEPS
    assert plan.scheduler_interval == "step"


def test_explicit_t_max_wins():
    plan = build_plan(mlp(scheduler="CosineAnnealingLR", scheduler_params={"T_max": 4}))
    assert plan.scheduler.T_max == 4


def test_one_cycle_total_steps():
    doc = mlp(scheduler="OneCycleLR", scheduler_params={"max_lr": 0.05}, training={"epochs": 5})
    a = analyze(doc)
    assert a.ok, [str(e) for e in a.errors]
    assert a.result("sched").params["total_steps"] == 5 * DIGITS_STEPS == 115
    plan = build_plan(doc)
    assert isinstance(plan.scheduler, lr_scheduler.OneCycleLR)
    assert plan.scheduler.total_steps == 115
    assert plan.scheduler_interval == "step"
    assert plan.optimizer.param_groups[0]["max_lr"] == 0.05
    # the whole cycle can run without torch complaining about stepping too far
    for _ in range(115):
        plan.optimizer.step()
        plan.scheduler.step()


@pytest.mark.parametrize(
    "scheduler,params,attr",
    [("OneCycleLR", {}, "total_steps"), ("CosineAnnealingLR", {"interval": "step"}, "T_max")],
)
def test_steps_per_epoch_override_reaches_the_scheduler(scheduler, params, attr):
    doc = mlp(scheduler=scheduler, scheduler_params=params, training={"epochs": 5})
    plan = build_plan(doc, steps_per_epoch=10)
    assert plan.settings["steps_per_epoch"] == 10
    assert getattr(plan.scheduler, attr) == 50


def test_sequential_warmup_chain():
    doc = add(
        mlp(optimizer_params={"lr": 0.03}, training={"epochs": 10}),
        node("warm", "LinearLR", {"start_factor": 0.1, "total_iters": 3}),
        node("cos", "CosineAnnealingLR"),
        node("sched", "SequentialLR", {"milestone": 3}),
        edge("opt", "warm", "optimizer", "optimizer"),
        edge("opt", "cos", "optimizer", "optimizer"),
        edge("warm", "sched", "scheduler", "first"),
        edge("cos", "sched", "scheduler", "then"),
    )
    assert validate(doc) == []
    plan = build_plan(doc)
    s = plan.scheduler
    assert isinstance(s, lr_scheduler.SequentialLR)
    assert [type(c) for c in s._schedulers] == [
        lr_scheduler.LinearLR,
        lr_scheduler.CosineAnnealingLR,
    ]
    assert s._milestones == [3]
    assert s._schedulers[1].T_max == 10 - 3  # the rest of the run after the warm-up
    assert plan.scheduler_interval == "epoch"
    lrs = []
    for _ in range(6):
        lrs.append(plan.optimizer.param_groups[0]["lr"])
        plan.optimizer.step()
        s.step()
    assert lrs[0] == pytest.approx(0.003)  # 0.1 × 0.03: warm-up starts low
    assert lrs[0] < lrs[1] < lrs[2] < 0.03
    assert lrs[3] == pytest.approx(0.03)  # the cosine takes over at the milestone
    assert lrs[4] < lrs[3]


def test_reduce_on_plateau_monitor():
    plan = build_plan(mlp(scheduler="ReduceLROnPlateau", scheduler_params={"patience": 2}))
    assert isinstance(plan.scheduler, lr_scheduler.ReduceLROnPlateau)
    assert plan.scheduler_monitor == "val_loss"
    assert plan.scheduler_interval == "epoch"
    assert plan.scheduler.patience == 2
    doc = mlp(
        scheduler="ReduceLROnPlateau",
        scheduler_params={"monitor": "val_accuracy", "mode": "max", "factor": 0.5, "patience": 0},
    )
    plan = build_plan(doc)
    assert plan.scheduler_monitor == "val_accuracy"
    lr = plan.optimizer.param_groups[0]["lr"]
    for metric in (0.5, 0.5, 0.5):
        plan.scheduler.step(metric)
    assert plan.optimizer.param_groups[0]["lr"] < lr


def test_step_lr_params():
    plan = build_plan(mlp(scheduler="StepLR", scheduler_params={"step_size": 3, "gamma": 0.5}))
    assert isinstance(plan.scheduler, lr_scheduler.StepLR)
    assert (plan.scheduler.step_size, plan.scheduler.gamma) == (3, 0.5)


# --- custom code -------------------------------------------------------------------------------


def _custom() -> dict:
    doc = chain(
        "digits",
        [
            (
                "gate",
                "CustomLayer",
                {
                    "code": "return x * torch.sigmoid(self.w)",
                    "parameters": [{"name": "w", "shape": [64], "init": "zeros"}],
                },
            ),
            ("fc", "Linear", {"out_features": 10}),
        ],
        loss="CustomLoss",
        loss_params={"code": "return F.cross_entropy(input, target) * 2"},
    )
    doc["edges"][0]["target_port"] = "x"
    return doc


def test_custom_code_builds_and_trains():
    doc = _custom()
    plan = build_plan(doc, allow_custom_code=True)
    assert "class Gate(nn.Module)" in plan.source
    gate = plan.model.gate
    assert gate.w.shape == (64,) and torch.equal(gate.w, torch.zeros(64))
    optimized = {id(p) for g in plan.optimizer.param_groups for p in g["params"]}
    assert id(gate.w) in optimized
    batch = _batch()
    outputs = plan.forward(batch)
    total, _ = plan.compute_loss(outputs, batch)
    expected = F.cross_entropy(plan.model.fc(batch["x"] * 0.5), batch["y"]) * 2
    assert torch.allclose(total, expected)
    total.backward()
    assert gate.w.grad is not None


def test_custom_code_disabled():
    doc = _custom()
    problems = validate(doc)
    disabled = [(p["node"], p["field"]) for p in problems if p["code"] == "custom_code_disabled"]
    # the loss downstream of the failed layer is not inferred, so only the layer is reported
    assert ("gate", "code") in disabled
    assert {p["code"] for p in problems if p["severity"] == "error"} == {"custom_code_disabled"}
    with pytest.raises(GraphCompileError) as info:
        build_plan(doc)
    assert {e.code for e in info.value.errors} == {"custom_code_disabled"}
    # a custom loss alone is reported too
    only_loss = mlp(
        loss="CustomLoss", loss_params={"code": "return F.cross_entropy(input, target)"}
    )
    problems = validate(only_loss)
    assert [(p["code"], p["node"], p["field"]) for p in problems] == [
        ("custom_code_disabled", "loss", "code")
    ]
    assert validate(only_loss, allow_custom_code=True) == []
