"""The training step's CPU-testable parts: why the whole-step CUDA graph is refused
(`cuda_graph_blockers`, pure) and the fp16 GradScaler path of the eager step, against a
hand-written step."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from server.engine.device import Placement, choose_precision
from server.engine.steps import StepContext, cuda_graph_blockers, eager_step


def _placement(device: str, use_scaler: bool = False) -> Placement:
    dtype = torch.float16 if use_scaler else None
    return Placement(torch.device(device), "test", "fp32", "test", dtype, use_scaler)


def _ctx(*, device="cuda", scaler=None, accumulation=1, scheduler=None, optimizer="Adam"):
    plan = SimpleNamespace(scheduler=scheduler, optimizer_spec={"type": optimizer})
    return StepContext(plan, nn.Identity(), _placement(device), None, accumulation, scaler)


def test_a_plain_cuda_run_has_no_blockers():
    assert cuda_graph_blockers(_ctx(), "StepLR", custom_code=False) == []


@pytest.mark.parametrize(
    ("change", "scheduler_name", "custom_code", "reason"),
    [
        ({"device": "cpu"}, None, False, "not on CUDA"),
        ({"scaler": object()}, None, False, "fp16 loss scaling checks for inf on the host"),
        ({"accumulation": 2}, None, False, "gradient accumulation"),
        ({}, "ReduceLROnPlateau", False, "ReduceLROnPlateau sets the learning rate"),
        (
            {"scheduler": SimpleNamespace(cycle_momentum=True)},
            "OneCycleLR",
            False,
            "OneCycleLR cycles momentum",
        ),
        ({}, None, True, "custom code may not be capturable"),
        ({"optimizer": "NoSuchOptimizer"}, None, False, "unknown optimizer"),
    ],
)
def test_each_blocker_alone_gives_its_reason(change, scheduler_name, custom_code, reason):
    blockers = cuda_graph_blockers(_ctx(**change), scheduler_name, custom_code)
    assert len(blockers) == 1 and blockers[0].startswith(reason), blockers


def test_a_schedule_that_keeps_momentum_is_no_blocker():
    ctx = _ctx(scheduler=SimpleNamespace(cycle_momentum=False))
    assert cuda_graph_blockers(ctx, "OneCycleLR", custom_code=False) == []


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    x = torch.randn(16, 6, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    return model, x, y


def _eager(model, scaler, clip):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    plan = SimpleNamespace(
        optimizer=opt,
        compiled=SimpleNamespace(interface=SimpleNamespace(inputs=["x"])),
        compute_loss=lambda outputs, batch: (
            nn.functional.cross_entropy(outputs[0], batch["y"]),
            {},
        ),
    )
    ctx = StepContext(plan, model, _placement("cpu"), clip, 1, scaler)
    return eager_step(ctx)


def _by_hand(model, x, y, clip):
    """The reference: one plain SGD step, gradients clipped to `clip`, no scaling at all."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    nn.functional.cross_entropy(model(x), y).backward()
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    factor = min(1.0, clip / (float(norm) + 1e-6))
    for p in model.parameters():
        p.grad.mul_(factor)
    opt.step()


def test_the_scaled_step_unscales_before_clipping_and_matches_a_plain_step():
    model, x, y = _problem()
    reference = copy.deepcopy(model)
    _by_hand(reference, x, y, clip=0.1)
    # a scale of 2**12: clipping the still-scaled gradients would shrink the step 4096 times
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    _eager(model, scaler, clip=0.1)(x, y, True)
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert scaler.get_scale() == 2.0**12  # finite gradients: the scale is kept


def test_the_scaled_step_skips_an_overflowing_step_and_lowers_the_scale():
    model, x, y = _problem()
    before = copy.deepcopy(model)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    _eager(model, scaler, clip=None)(x * float("inf"), y, True)
    for ours, theirs in zip(model.parameters(), before.parameters(), strict=True):
        assert torch.equal(ours, theirs)  # the step with inf gradients was skipped
    assert scaler.get_scale() == 2.0**11


def test_the_stated_precision_and_its_reason_follow_the_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_precision("fp16", cpu) == (
        "bf16",
        "fp16 autocast needs CUDA: bf16 autocast on the CPU instead",
        torch.bfloat16,
        False,
    )
    assert choose_precision("fp16", cuda)[::2] == ("fp16", torch.float16)
    assert choose_precision("fp16", cuda)[3] is True  # the GradScaler only with CUDA fp16
    assert choose_precision("fp32", cpu)[2:] == (None, False)
