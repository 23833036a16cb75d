"""Generated datasets: deterministic for a given data_seed (numpy Generator / torch Generator)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from graph_compiler.datasets import BUILTINS

from . import markov_text, segmentation
from .loaded import Loaded

NAMES = frozenset(name for name, b in BUILTINS.items() if b.synthetic)


def load(name: str, p: Mapping[str, Any]) -> Loaded:
    n, noise, seed = int(p["samples"]), float(p["noise"]), int(p["data_seed"])
    description = BUILTINS[name].description
    if name == "markov_text":
        return markov_text.load(p, description)
    if name == "random_images":
        return _random_images(n, tuple(p["image_shape"]), int(p["num_classes"]), seed, description)
    if name == "shapes_segmentation":
        return segmentation.load(n, tuple(p["image_shape"]), noise, seed, description)
    rng = np.random.default_rng(seed)
    if name == "sine_regress":
        x, y = sine_regress(rng, n, int(p["seq_len"]), noise)
        return Loaded(
            x=torch.from_numpy(x),
            y=torch.from_numpy(y),
            task="regression",
            num_classes=None,
            class_names=None,
            feature_names=None,
            description=description,
        )
    if name == "moons":
        x, y, k = (*moons(rng, n, noise), 2)
    elif name == "circles":
        x, y, k = (*circles(rng, n, noise), 2)
    elif name == "spirals":
        k = int(p["num_classes"])
        x, y = spirals(rng, n, k, noise)
    else:  # sine_classify
        k = int(p["num_classes"])
        x, y = sine_classify(rng, n, int(p["seq_len"]), k, noise)
    return Loaded(
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        y=torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)),
        task="classification",
        num_classes=k,
        class_names=_class_names(name, k),
        feature_names=None,
        description=description,
    )


def _class_names(name: str, k: int) -> list[str]:
    if name == "moons":
        return ["upper moon", "lower moon"]
    if name == "circles":
        return ["outer circle", "inner circle"]
    if name == "sine_classify":
        return [f"band {i}" for i in range(k)]
    return [f"arm {i}" for i in range(k)]


def _balanced_labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n labels, classes as equal as possible, in random order."""
    return rng.permutation(np.arange(n) % k)


def moons(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (as sklearn.datasets.make_moons)."""
    y = _balanced_labels(rng, n, 2)
    t = rng.uniform(0.0, math.pi, n)
    x = np.where(
        (y == 0)[:, None],
        np.stack([np.cos(t), np.sin(t)], axis=1),
        np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1),
    )
    return x + rng.normal(0.0, noise, x.shape), y


def circles(
    rng: np.random.Generator, n: int, noise: float, factor: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """A circle of radius 1 around one of radius `factor`."""
    y = _balanced_labels(rng, n, 2)
    t = rng.uniform(0.0, 2 * math.pi, n)
    r = np.where(y == 0, 1.0, factor)
    x = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    return x + rng.normal(0.0, noise, x.shape), y


def spirals(
    rng: np.random.Generator, n: int, k: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """k arms winding 1.5 turns out from the centre, arm i rotated by 2πi/k. The noise is halved:
    neighbouring arms are closer than the two moons are."""
    y = _balanced_labels(rng, n, k)
    r = rng.uniform(0.05, 1.0, n)
    t = 2 * math.pi * y / k + 3 * math.pi * r
    x = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    return x + rng.normal(0.0, noise, x.shape) * 0.5, y


def frequency_bands(seq_len: int, k: int) -> np.ndarray:
    """(k, 2) frequency ranges in cycles per step, log-spaced from about one cycle per sequence
    up to 0.4 (below Nyquist); each band keeps the middle 60 % of its slot so that neighbours
    are well apart."""
    hi = 0.4
    lo = min(1.0 / seq_len, hi / 4)
    edges = np.geomspace(lo, hi, k + 1)
    log_edges = np.log(edges)
    width = np.diff(log_edges)
    return np.exp(np.stack([log_edges[:-1] + 0.2 * width, log_edges[1:] - 0.2 * width], axis=1))


def _sines(
    rng: np.random.Generator, freq: np.ndarray, steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(freq)
    amplitude = rng.uniform(0.5, 1.5, n)
    phase = rng.uniform(0.0, 2 * math.pi, n)
    t = np.arange(steps)
    return (
        amplitude,
        phase,
        amplitude[:, None] * np.sin(2 * math.pi * freq[:, None] * t[None, :] + phase[:, None]),
    )


def sine_classify(
    rng: np.random.Generator, n: int, seq_len: int, k: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine waves of random phase and amplitude; the class is the frequency band."""
    y = _balanced_labels(rng, n, k)
    bands = frequency_bands(seq_len, k)
    freq = np.exp(rng.uniform(np.log(bands[y, 0]), np.log(bands[y, 1])))
    _, _, wave = _sines(rng, freq, seq_len)
    x = wave + rng.normal(0.0, noise, wave.shape)
    return x[:, :, None].astype(np.float32), y


def sine_regress(
    rng: np.random.Generator, n: int, seq_len: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine waves; the target is the next value of the noise-free wave."""
    freq = rng.uniform(0.02, 0.2, n)
    _, _, wave = _sines(rng, freq, seq_len + 1)
    x = wave[:, :seq_len] + rng.normal(0.0, noise, (n, seq_len))
    return x[:, :, None].astype(np.float32), wave[:, seq_len:].astype(np.float32)


def _random_images(n: int, shape: tuple[int, ...], k: int, seed: int, description: str) -> Loaded:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    return Loaded(
        x=x,
        y=y,
        task="classification",
        num_classes=k,
        class_names=[str(i) for i in range(k)],
        feature_names=None,
        description=description,
    )
