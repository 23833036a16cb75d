"""The optimizer's kernel: fused on CUDA for Adam and AdamW (the same update in a few launches),
PyTorch's default elsewhere; a resumed run keeps its own kernel choice, not the checkpoint's."""

from __future__ import annotations

import pytest
import torch

from graph_compiler.plan import build_plan, kernel_choice
from server.engine.run_checkpoints import load_optimizer_state
from tests.helpers import chain


def test_fused_only_on_cuda_and_only_where_pytorch_has_it():
    assert kernel_choice("AdamW", "cuda") == {"fused": True}
    assert kernel_choice("Adam", torch.device("cuda:1")) == {"fused": True}
    assert kernel_choice("AdamW", "cpu") == {}
    assert kernel_choice("RMSprop", "cuda") == {}
    plan = build_plan(chain("moons", [("Linear", {"out_features": 2})], optimizer="AdamW"))
    assert not plan.optimizer.defaults["fused"]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_the_fused_kernel_is_the_same_update(name):
    # PyTorch has the fused kernel on the CPU too: check there that it is the default's update
    torch.manual_seed(0)
    start = torch.randn(50, 20)
    grads = [torch.randn(50, 20) for _ in range(5)]
    finals = []
    for extra in ({}, kernel_choice(name, "cuda")):
        p = torch.nn.Parameter(start.clone())
        opt = getattr(torch.optim, name)([p], lr=1e-2, weight_decay=0.1, **extra)
        for g in grads:
            p.grad = g.clone()
            opt.step()
        finals.append(p.detach())
    assert not torch.equal(finals[0], start)
    assert torch.allclose(finals[0], finals[1], atol=1e-6)


def test_a_resumed_optimizer_keeps_its_kernel_and_takes_the_state():
    p = torch.nn.Parameter(torch.ones(3))
    saved_opt = torch.optim.AdamW([p], lr=0.5, fused=True)
    p.grad = torch.ones(3)
    saved_opt.step()
    saved = saved_opt.state_dict()
    q = torch.nn.Parameter(torch.ones(3))
    live = torch.optim.AdamW([q], lr=0.1)
    load_optimizer_state(live, saved)
    group = live.param_groups[0]
    assert not group["fused"] and group["lr"] == 0.5
    assert torch.equal(live.state[q]["exp_avg"], saved_opt.state[p]["exp_avg"])
