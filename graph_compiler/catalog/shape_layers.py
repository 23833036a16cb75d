"""Layers that change a tensor's shape without weights: Flatten, Unflatten, PixelShuffle,
Upsample, and Identity (category "layers").
"""

from __future__ import annotations

from torch import nn

from .layer_entry import layer, size
from .spec import REQUIRED, Param

layer(
    "Flatten",
    nn.Flatten,
    "Flattens dims start_dim..end_dim into one: (B, C, H, W) → (B, C·H·W).",
    [
        Param("start_dim", "int", 1, "First dim to flatten (0 is the batch).", min=0),
        Param("end_dim", "int", -1, "Last dim to flatten."),
    ],
    batch_preserving=False,
)
layer(
    "Unflatten",
    nn.Unflatten,
    "Expands one dim into a shape: (B, 64) → (B, 1, 8, 8).",
    [
        Param("dim", "int", 1, "Dim to expand (0 is the batch).", positional=True),
        Param(
            "unflattened_size",
            "ints",
            REQUIRED,
            "The new shape of that dim.",
            min=1,
            positional=True,
        ),
    ],
    batch_preserving=False,
)
layer(
    "PixelShuffle",
    nn.PixelShuffle,
    "(B, C·r², H, W) → (B, C, H·r, W·r).",
    [size("upscale_factor", "Upscale factor r.", default=2)],
    ranks=(4,),
)
layer(
    "Upsample",
    nn.Upsample,
    "Upsamples by scale_factor or to a size (nearest, bilinear, ...).",
    [
        Param(
            "size",
            "int_or_tuple",
            None,
            "Output spatial size (or use scale_factor).",
            min=1,
            nullable=True,
        ),
        Param(
            "scale_factor",
            "float",
            2.0,
            "Multiplier for the spatial size.",
            min=0,
            exclusive_min=True,
            nullable=True,
        ),
        Param(
            "mode",
            "choice",
            "nearest",
            "Interpolation.",
            choices=("nearest", "linear", "bilinear", "bicubic", "trilinear"),
        ),
        Param(
            "align_corners", "bool", None, "Corner alignment (linear modes only).", nullable=True
        ),
    ],
    ranks=(3, 4, 5),
)
layer("Identity", nn.Identity, "Passes its input through unchanged.", [])
