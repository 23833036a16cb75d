"""The layers added for issue 13 compute what the same layers written by hand compute: each graph
below is built from its generated source, its weights (randomized) are copied by state_dict order
into a hand-written nn.Sequential with the same settings, and the outputs must be equal."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graph_compiler import analyze, build_module, generate
from tests.helpers import chain

TO_3D = ("Reshape", {"shape": [1, 4, 4, 4]})  # digits (B, 64) → (B, 1, 4, 4, 4)
HEAD = ("Flatten", ("Linear", {"out_features": 10}))


def _to_3d() -> nn.Module:
    return nn.Unflatten(1, (1, 4, 4, 4))


# name → (dataset, graph layers, the same network by hand, train mode)
CASES = {
    "Hardsigmoid": (
        "digits",
        [("Linear", {"out_features": 16}), "Hardsigmoid", ("Linear", {"out_features": 10})],
        lambda: nn.Sequential(nn.Linear(64, 16), nn.Hardsigmoid(), nn.Linear(16, 10)),
        False,
    ),
    "GLU": (
        "digits_images",  # (B, 1, 8, 8): halves the height
        [("GLU", {"dim": 2}), "Flatten", ("Linear", {"out_features": 10})],
        lambda: nn.Sequential(nn.GLU(dim=2), nn.Flatten(), nn.Linear(32, 10)),
        False,
    ),
    "RMSNorm": (
        "digits",
        [
            ("Linear", {"out_features": 16}),
            ("RMSNorm", {"eps": 1e-3}),
            ("Linear", {"out_features": 10}),
        ],
        lambda: nn.Sequential(nn.Linear(64, 16), nn.RMSNorm(16, eps=1e-3), nn.Linear(16, 10)),
        False,
    ),
    "RMSNorm_no_affine": (
        "digits",
        [("RMSNorm", {"elementwise_affine": False}), ("Linear", {"out_features": 10})],
        lambda: nn.Sequential(nn.RMSNorm(64, elementwise_affine=False), nn.Linear(64, 10)),
        False,
    ),
    "Dropout1d": (  # train mode, same seed: the same channels dropped
        "digits",
        [("Reshape", {"shape": [8, 8]}), ("Dropout1d", {"p": 0.3}), *HEAD],
        lambda: nn.Sequential(
            nn.Unflatten(1, (8, 8)), nn.Dropout1d(0.3), nn.Flatten(), nn.Linear(64, 10)
        ),
        True,
    ),
    "AdaptiveMaxPool1d": (
        "digits",
        [("Unsqueeze", {"dim": 1}), ("AdaptiveMaxPool1d", {"output_size": 5}), *HEAD],
        lambda: nn.Sequential(
            nn.Unflatten(1, (1, 64)), nn.AdaptiveMaxPool1d(5), nn.Flatten(), nn.Linear(5, 10)
        ),
        False,
    ),
    "AdaptiveMaxPool2d": (
        "digits_images",
        [("AdaptiveMaxPool2d", {"output_size": [3, 2]}), *HEAD],
        lambda: nn.Sequential(nn.AdaptiveMaxPool2d((3, 2)), nn.Flatten(), nn.Linear(6, 10)),
        False,
    ),
    "MaxPool3d": (
        "digits",
        [TO_3D, ("MaxPool3d", {"kernel_size": 2, "stride": 1, "padding": 1}), *HEAD],
        lambda: nn.Sequential(
            _to_3d(), nn.MaxPool3d(2, stride=1, padding=1), nn.Flatten(), nn.Linear(125, 10)
        ),
        False,
    ),
    "AvgPool3d": (
        "digits",
        [
            TO_3D,
            ("AvgPool3d", {"kernel_size": 3, "stride": 1, "padding": 1}),
            ("AvgPool3d", {"kernel_size": 3, "padding": 1, "count_include_pad": False}),
            *HEAD,
        ],
        lambda: nn.Sequential(
            _to_3d(),
            nn.AvgPool3d(3, stride=1, padding=1),
            nn.AvgPool3d(3, padding=1, count_include_pad=False),
            nn.Flatten(),
            nn.Linear(8, 10),
        ),
        False,
    ),
    "ConvTranspose3d": (
        "digits",
        [
            TO_3D,
            ("ConvTranspose3d", {"out_channels": 2, "kernel_size": 2, "stride": 2}),
            ("ConvTranspose3d", {"out_channels": 3, "kernel_size": [1, 2, 3], "padding": 1}),
            *HEAD,
        ],
        lambda: nn.Sequential(
            _to_3d(),
            nn.ConvTranspose3d(1, 2, 2, stride=2),
            nn.ConvTranspose3d(2, 3, (1, 2, 3), padding=1),
            nn.Flatten(),
            nn.Linear(3 * 6 * 7 * 8, 10),
        ),
        False,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_equals_hand_written_torch(name):
    dataset, layers, hand_written, train = CASES[name]
    doc = chain(dataset, layers)
    analysis = analyze(doc)
    assert analysis.ok and not analysis.errors, [str(e) for e in analysis.errors]
    assert "nn." + name.split("_")[0] in generate(analysis)
    generated = build_module(doc, seed=0)
    reference = hand_written()
    gen = torch.Generator().manual_seed(1)
    ours, theirs = generated.state_dict(), reference.state_dict()
    assert [tuple(t.shape) for t in ours.values()] == [tuple(t.shape) for t in theirs.values()]
    with torch.no_grad():
        for t in ours.values():  # RMSNorm's scale starts at ones: randomize everything
            t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
    reference.load_state_dict(dict(zip(theirs, ours.values(), strict=True)))
    generated.train(train)
    reference.train(train)
    shape = (5, 64) if dataset == "digits" else (5, 1, 8, 8)
    x = torch.randn(shape, generator=gen)
    with torch.no_grad():
        torch.manual_seed(3)
        got = generated(x)
        torch.manual_seed(3)
        expected = reference(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
