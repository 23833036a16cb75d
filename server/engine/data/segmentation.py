"""shapes_segmentation: seeded images of random discs, squares and triangles, with the mask of
per-pixel class ids (0 = background, then one class per shape kind) as the target."""

from __future__ import annotations

import numpy as np
import torch

from graph_compiler.datasets import SEGMENTATION_CLASSES

from .loaded import Loaded

MAX_SHAPES = 3  # shapes per image: 1 to MAX_SHAPES; a later one covers an earlier one


def shapes_segmentation(
    n: int, image_shape: tuple[int, int, int], noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """x (n, C, H, W) float32 and y (n, H, W) int64. Each shape has its own random colour
    (a brightness per channel), so the class follows from the outline, not the colour; the
    background is dim random clutter plus Gaussian noise of std `noise`."""
    rng = np.random.default_rng(seed)
    c, h, w = image_shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = min(h, w)
    x = rng.uniform(0.0, 0.2, (n, c, 1, 1)).astype(np.float32) * np.ones((1, 1, h, w), np.float32)
    y = np.zeros((n, h, w), dtype=np.int64)
    count = rng.integers(1, MAX_SHAPES + 1, n)
    for slot in range(MAX_SHAPES):
        kind = rng.integers(1, len(SEGMENTATION_CLASSES), n)
        r = rng.uniform(0.12, 0.25, n) * side + 0.5  # half the extent, in pixels
        # centres far enough in that most of each shape shows (a clipped disc reads as a square)
        cy = np.minimum(r, h / 2) + rng.uniform(0, 1, n) * np.maximum(h - 2 * r, 0)
        cx = np.minimum(r, w / 2) + rng.uniform(0, 1, n) * np.maximum(w - 2 * r, 0)
        colour = rng.uniform(0.5, 1.0, (n, c)).astype(np.float32)
        dy = yy[None] - cy[:, None, None]
        dx = xx[None] - cx[:, None, None]
        rr = r[:, None, None]
        disc = dx**2 + dy**2 <= rr**2
        square = (np.abs(dx) <= 0.8 * rr) & (np.abs(dy) <= 0.8 * rr)
        # apex up, base at the bottom: the half-width grows from 0 at the apex to r at the base
        triangle = (dy >= -rr) & (dy <= rr) & (np.abs(dx) <= (dy + rr) / 2)
        inside = np.select(
            [kind[:, None, None] == 1, kind[:, None, None] == 2], [disc, square], triangle
        )
        inside &= (slot < count)[:, None, None]
        y[inside] = np.broadcast_to(kind[:, None, None], inside.shape)[inside]
        x = np.where(inside[:, None], colour[:, :, None, None], x)
    x = x + rng.normal(0.0, noise, x.shape).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), y


def load(n: int, image_shape: tuple[int, ...], noise: float, seed: int, description: str):
    x, y = shapes_segmentation(n, tuple(int(d) for d in image_shape), noise, seed)
    return Loaded(
        x=torch.from_numpy(x),
        y=torch.from_numpy(y),
        task="classification",
        num_classes=len(SEGMENTATION_CLASSES),
        class_names=list(SEGMENTATION_CLASSES),
        feature_names=None,
        description=description,
    )
