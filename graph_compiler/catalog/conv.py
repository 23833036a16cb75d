"""Convolutions, transposed convolutions and pooling (category "layers")."""

from __future__ import annotations

from torch import nn

from .layer_entry import BIAS, LAYOUTS, inferred, layer, size
from .spec import Param


def _conv_params(dims: int, transpose: bool = False) -> tuple[Param, ...]:
    tup = dict(kind="int_or_tuple", length=dims)
    params = [
        inferred("in_channels", 1, "Input channels"),
        size("out_channels", "Output channels (number of filters)."),
        Param("kernel_size", default=3, description="Kernel size.", min=1, positional=True, **tup),
        Param("stride", default=1, description="Stride.", min=1, **tup),
    ]
    if transpose:
        params += [
            Param("padding", default=0, description="Implicit zero padding.", min=0, **tup),
            Param("output_padding", default=0, description="Extra size on one side.", min=0, **tup),
        ]
    else:
        params.append(
            Param(
                "padding",
                default=0,
                description="Zero padding per side, or 'same' / 'valid'.",
                min=0,
                strings=("same", "valid"),
                **tup,
            )
        )
    params += [
        Param("dilation", default=1, description="Spacing between kernel taps.", min=1, **tup),
        Param("groups", "int", 1, "Blocked connections from input to output channels.", min=1),
        BIAS,
    ]
    if not transpose:
        params.append(
            Param(
                "padding_mode",
                "choice",
                "zeros",
                "How padding values are chosen.",
                choices=("zeros", "reflect", "replicate", "circular"),
            )
        )
    return tuple(params)


for _dims, _cls in ((1, nn.Conv1d), (2, nn.Conv2d), (3, nn.Conv3d)):
    layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D convolution over a {LAYOUTS[_dims + 2]} input.",
        _conv_params(_dims),
        ranks=(_dims + 2,),
        hint="" if _dims != 2 else "reshape the input to (B, C, H, W), e.g. with Unflatten",
        keywords=("convolution", "filter"),
    )
for _dims, _cls in ((1, nn.ConvTranspose1d), (2, nn.ConvTranspose2d), (3, nn.ConvTranspose3d)):
    layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D transposed convolution (learned upsampling).",
        _conv_params(_dims, transpose=True),
        ranks=(_dims + 2,),
        keywords=("deconvolution", "upsample"),
    )


def _window(dims: int) -> list[Param]:
    """A pooling window over `dims` dims: its size and stride (the size by default)."""
    return [
        Param(
            "kernel_size", "int_or_tuple", 2, "Window size.", min=1, length=dims, positional=True
        ),
        Param(
            "stride",
            "int_or_tuple",
            None,
            "Stride (default: kernel_size).",
            min=1,
            length=dims,
            nullable=True,
        ),
    ]


for _dims, _cls in ((1, nn.MaxPool1d), (2, nn.MaxPool2d), (3, nn.MaxPool3d)):
    layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D max pooling.",
        [
            *_window(_dims),
            Param("padding", "int_or_tuple", 0, "Implicit -inf padding.", min=0, length=_dims),
            Param(
                "dilation", "int_or_tuple", 1, "Spacing between window taps.", min=1, length=_dims
            ),
            Param("ceil_mode", "bool", False, "Use ceil instead of floor for the output size."),
        ],
        ranks=(_dims + 2,),
        keywords=("pool", "downsample"),
    )
for _dims, _cls in ((1, nn.AvgPool1d), (2, nn.AvgPool2d), (3, nn.AvgPool3d)):
    layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D average pooling.",
        [
            *_window(_dims),
            Param("padding", "int_or_tuple", 0, "Implicit zero padding.", min=0, length=_dims),
            Param("ceil_mode", "bool", False, "Use ceil instead of floor for the output size."),
            Param("count_include_pad", "bool", True, "Count padding zeros in the average."),
        ],
        ranks=(_dims + 2,),
        keywords=("pool", "downsample"),
    )
for _kind, _global, _keywords, _classes in (
    ("average", "global average pool", ("global average pool", "gap"),
     (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)),
    ("max", "global max pool", ("global max pool", "pool"),
     (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)),
):  # fmt: skip
    for _dims, _cls in enumerate(_classes, start=1):
        layer(
            _cls.__name__,
            _cls,
            f"{_dims}-D adaptive {_kind} pooling to a fixed output size (1 = {_global}).",
            [
                Param(
                    "output_size",
                    "int_or_tuple",
                    1,
                    "Output size.",
                    min=1,
                    length=_dims,
                    positional=True,
                )
            ],
            ranks=(_dims + 2,),
            keywords=_keywords,
        )
