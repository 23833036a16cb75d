"""Normalization and dropout: the layers that regularize (category "layers")."""

from __future__ import annotations

from torch import nn

from .layer_entry import BIAS, inferred, last_dim, layer, size
from .spec import Param

_NORM_COMMON = [
    Param("eps", "float", 1e-5, "Added to the variance for stability.", min=0, exclusive_min=True),
    Param("momentum", "float", 0.1, "Running-statistics momentum.", min=0, max=1, nullable=True),
    Param("affine", "bool", True, "Learn a scale and shift."),
    Param("track_running_stats", "bool", True, "Keep running mean/var for eval mode."),
]
layer(
    "BatchNorm1d",
    nn.BatchNorm1d,
    "Batch normalization over (B, C) or (B, C, L) inputs.",
    [inferred("num_features", 1, "Channels"), *_NORM_COMMON],
    ranks=(2, 3),
)
layer(
    "BatchNorm2d",
    nn.BatchNorm2d,
    "Batch normalization over (B, C, H, W) inputs.",
    [inferred("num_features", 1, "Channels"), *_NORM_COMMON],
    ranks=(4,),
)
layer(
    "InstanceNorm2d",
    nn.InstanceNorm2d,
    "Instance normalization: per-sample, per-channel over H and W.",
    [
        inferred("num_features", 1, "Channels"),
        Param(
            "eps", "float", 1e-5, "Added to the variance for stability.", min=0, exclusive_min=True
        ),
        Param(
            "momentum", "float", 0.1, "Running-statistics momentum.", min=0, max=1, nullable=True
        ),
        Param("affine", "bool", False, "Learn a scale and shift."),
        Param("track_running_stats", "bool", False, "Keep running mean/var for eval mode."),
    ],
    ranks=(4,),
)


layer(
    "LayerNorm",
    nn.LayerNorm,
    "Layer normalization over the last dimension.",
    [
        Param(
            "normalized_shape",
            "int",
            min=1,
            infer=last_dim,
            positional=True,
            description="Size of the normalized last dimension (inferred).",
        ),
        Param(
            "eps", "float", 1e-5, "Added to the variance for stability.", min=0, exclusive_min=True
        ),
        Param("elementwise_affine", "bool", True, "Learn a per-element scale and shift."),
        BIAS,
    ],
    ranks=(2, 3, 4),
)
layer(
    "RMSNorm",
    nn.RMSNorm,
    "Root-mean-square normalization over the last dimension (no mean subtraction, no shift).",
    [
        Param(
            "normalized_shape",
            "int",
            min=1,
            infer=last_dim,
            positional=True,
            description="Size of the normalized last dimension (inferred).",
        ),
        Param(
            "eps",
            "float",
            None,
            "Added to the mean square for stability (auto: the dtype's machine epsilon).",
            min=0,
            exclusive_min=True,
            nullable=True,
        ),
        Param("elementwise_affine", "bool", True, "Learn a per-element scale."),
    ],
    ranks=(2, 3, 4),
    keywords=("rms", "llama"),
)
layer(
    "GroupNorm",
    nn.GroupNorm,
    "Group normalization: channels split into groups, normalized per sample.",
    [
        size("num_groups", "Number of groups (must divide the channels).", default=8),
        inferred("num_channels", 1, "Channels"),
        Param(
            "eps", "float", 1e-5, "Added to the variance for stability.", min=0, exclusive_min=True
        ),
        Param("affine", "bool", True, "Learn a per-channel scale and shift."),
    ],
    ranks=(2, 3, 4, 5),
)

layer(
    "Dropout",
    nn.Dropout,
    "Randomly zeroes elements with probability p during training.",
    [Param("p", "float", 0.5, "Probability of an element being zeroed.", min=0, max=1)],
    keywords=("regularization",),
)
layer(
    "Dropout1d",
    nn.Dropout1d,
    "Randomly zeroes whole channels of (B, C, L) inputs with probability p during training.",
    [Param("p", "float", 0.5, "Probability of a channel being zeroed.", min=0, max=1)],
    ranks=(3,),
)
layer(
    "Dropout2d",
    nn.Dropout2d,
    "Randomly zeroes whole channels with probability p during training.",
    [Param("p", "float", 0.5, "Probability of a channel being zeroed.", min=0, max=1)],
    ranks=(4,),
)
