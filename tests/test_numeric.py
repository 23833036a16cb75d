"""The generated models compute exactly what the same network written by hand computes.

For each example below, a plain PyTorch module (the way one would write it without torchloom)
takes the generated model's weights, matched one to one by state_dict order with equal shapes,
and must give the same outputs in eval mode. A last test checks that the module the app trains
is an instance of the class in the generated source, not of a separately built twin.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from graph_compiler import analyze, build_module, compile_graph, generate, load_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALL_EXAMPLES = sorted(EXAMPLES.glob("*.json"))


# --- the same networks, written by hand ----------------------------------------------------------


class DigitsMLP(nn.Module):
    def __init__(self, features: int = 64, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, 128),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, classes),
        )

    def forward(self, x):
        return self.net(x)


class DigitsCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 2 * 2, 128),
            nn.ReLU(),
            nn.Linear(128, classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


class ResNet(nn.Module):
    def __init__(self, channels: int = 32, blocks: int = 3, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.layers = nn.Sequential(*(BasicBlock(channels) for _ in range(blocks)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class GRUClassifier(nn.Module):
    def __init__(self, hidden: int = 64, classes: int = 3):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class TransformerClassifier(nn.Module):
    """Patch embedding (non-overlapping 8-step windows), encoder, mean over patches."""

    def __init__(self, patch: int = 8, d_model: int = 32, layers: int = 2, classes: int = 3):
        super().__init__()
        self.patch = patch
        self.embed = nn.Linear(patch, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x):
        patches = x.reshape(x.size(0), -1, self.patch)  # (B, T, 1) → (B, T / patch, patch)
        x = self.encoder(self.embed(patches))
        return self.head(x.mean(dim=1))


# example → (hand-written module, per-sample input shape)
CASES = {
    "digits_mlp": (DigitsMLP, (64,)),
    "digits_cnn": (DigitsCNN, (1, 8, 8)),
    "residual_cnn": (ResNet, (1, 8, 8)),
    "gru_sequences": (GRUClassifier, (32, 1)),
    "transformer_classifier": (TransformerClassifier, (32, 1)),
}


def _copy_by_order(source: nn.Module, target: nn.Module) -> None:
    """Load source's state into target, pairing entries by position; shapes must match 1:1."""
    src = list(source.state_dict().items())
    dst = list(target.state_dict().items())
    assert len(src) == len(dst), f"{len(src)} state entries generated, {len(dst)} by hand"
    for (s_name, s), (d_name, d) in zip(src, dst, strict=True):
        assert s.shape == d.shape and s.dtype == d.dtype, (
            f"generated {s_name} {tuple(s.shape)} {s.dtype} vs "
            f"hand-written {d_name} {tuple(d.shape)} {d.dtype}"
        )
    target.load_state_dict({d_name: s for (_, s), (d_name, _) in zip(src, dst, strict=True)})


def _randomize_running_stats(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BatchNorm statistics, so eval mode exercises them."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_model_equals_hand_written(name: str):
    reference_cls, sample_shape = CASES[name]
    document = (EXAMPLES / f"{name}.json").read_bytes()
    generated = build_module(document, seed=0)
    torch.manual_seed(1)  # different initial weights: the copy below must make them equal
    reference = reference_cls()

    counts = (_n_params(generated), _n_params(reference), analyze(document).totals()["params"])
    assert len(set(counts)) == 1, f"parameters: generated, hand-written, analysed = {counts}"
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        _randomize_running_stats(generated, gen)
    _copy_by_order(generated, reference)

    generated.eval()
    reference.eval()
    x = torch.randn((4, *sample_shape), generator=gen)
    with torch.no_grad():
        expected = reference(x)
        actual = generated(x)
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=[p.stem for p in ALL_EXAMPLES])
def test_built_module_is_the_generated_class(path: Path):
    document = path.read_bytes()
    source = generate(document)
    compiled = compile_graph(document)
    assert compiled.source == source

    model = build_module(document)
    module = sys.modules[type(model).__module__]
    assert module is load_source(source)
    assert type(model) is getattr(module, compiled.class_name)
    # the module really was made from that text: its classes' source lines come from it
    assert inspect.getsource(module) == source
    assert inspect.getsource(type(model)) in source
    for sub in model.modules():
        if type(sub).__module__ == module.__name__:
            assert type(sub) is getattr(module, type(sub).__name__)
