"""Layers: nn.Module classes with weights or structure (category "layers")."""

from __future__ import annotations

from torch import nn

from .registry import register
from .spec import REQUIRED, InferContext, NodeSpec, Param, Port


def inferred(name: str, dim: int, what: str, port: str = "in") -> Param:
    """A size read off the input shape (like a Lazy module), never typed by the user."""

    def infer(ctx: InferContext) -> int | None:
        shape = ctx.shape(port)
        return shape[dim] if shape is not None and len(shape) > abs(dim) - (dim < 0) else None

    return Param(
        name, "int", min=1, infer=infer, positional=True, description=f"{what} (inferred)."
    )


def size(name: str, description: str, default=REQUIRED, positional: bool = True) -> Param:
    return Param(name, "int", default, description, min=1, positional=positional)


BIAS = Param("bias", "bool", True, "Learn an additive bias.")


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


_LAYOUTS = {2: "(B, features)", 3: "(B, C, L)", 4: "(B, C, H, W)", 5: "(B, C, D, H, W)"}


def _layout(ranks) -> str:
    return " or ".join(f"{r}-D {_LAYOUTS[r]}" for r in ranks) if ranks else ""


def _layer(type_: str, cls, doc: str, params, *, ranks=None, hint="", **kw) -> None:
    inputs = kw.pop("inputs", None) or (Port("in", ranks=ranks, layout=_layout(ranks)),)
    register(
        NodeSpec(
            type=type_,
            category="layers",
            doc=doc,
            role="layer",
            torch_class=cls,
            params=tuple(params),
            inputs=inputs,
            rank_hint=hint,
            **kw,
        )
    )


FLATTEN_HINT = "add a Flatten before it"

_layer(
    "Linear",
    nn.Linear,
    "Fully connected layer: y = x·Wᵀ + b over the last dimension.",
    [inferred("in_features", -1, "Input features"), size("out_features", "Output features."), BIAS],
    inputs=(Port("in", ranks=(2, 3), layout="2-D (B, features) or 3-D (B, T, features)"),),
    hint=FLATTEN_HINT,
    keywords=("dense", "fully connected", "fc"),
)
_layer(
    "Bilinear",
    nn.Bilinear,
    "Bilinear layer: y = x1ᵀ·A·x2 + b, combining two inputs.",
    [
        inferred("in1_features", -1, "First input features", port="in1"),
        inferred("in2_features", -1, "Second input features", port="in2"),
        size("out_features", "Output features."),
        BIAS,
    ],
    inputs=(Port("in1", ranks=(2, 3)), Port("in2", ranks=(2, 3))),
    call=lambda p, ins, m: f"{m}({ins['in1'][0]}, {ins['in2'][0]})",
    hint=FLATTEN_HINT,
)

for _dims, _cls in ((1, nn.Conv1d), (2, nn.Conv2d), (3, nn.Conv3d)):
    _layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D convolution over a {_LAYOUTS[_dims + 2]} input.",
        _conv_params(_dims),
        ranks=(_dims + 2,),
        hint="" if _dims != 2 else "reshape the input to (B, C, H, W), e.g. with Unflatten",
        keywords=("convolution", "filter"),
    )
for _dims, _cls in ((1, nn.ConvTranspose1d), (2, nn.ConvTranspose2d)):
    _layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D transposed convolution (learned upsampling).",
        _conv_params(_dims, transpose=True),
        ranks=(_dims + 2,),
        keywords=("deconvolution", "upsample"),
    )

for _dims, _cls in ((1, nn.MaxPool1d), (2, nn.MaxPool2d)):
    _layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D max pooling.",
        [
            Param(
                "kernel_size",
                "int_or_tuple",
                2,
                "Window size.",
                min=1,
                length=_dims,
                positional=True,
            ),
            Param(
                "stride",
                "int_or_tuple",
                None,
                "Stride (default: kernel_size).",
                min=1,
                length=_dims,
                nullable=True,
            ),
            Param("padding", "int_or_tuple", 0, "Implicit -inf padding.", min=0, length=_dims),
            Param(
                "dilation", "int_or_tuple", 1, "Spacing between window taps.", min=1, length=_dims
            ),
            Param("ceil_mode", "bool", False, "Use ceil instead of floor for the output size."),
        ],
        ranks=(_dims + 2,),
        keywords=("pool", "downsample"),
    )
for _dims, _cls in ((1, nn.AvgPool1d), (2, nn.AvgPool2d)):
    _layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D average pooling.",
        [
            Param(
                "kernel_size",
                "int_or_tuple",
                2,
                "Window size.",
                min=1,
                length=_dims,
                positional=True,
            ),
            Param(
                "stride",
                "int_or_tuple",
                None,
                "Stride (default: kernel_size).",
                min=1,
                length=_dims,
                nullable=True,
            ),
            Param("padding", "int_or_tuple", 0, "Implicit zero padding.", min=0, length=_dims),
            Param("ceil_mode", "bool", False, "Use ceil instead of floor for the output size."),
            Param("count_include_pad", "bool", True, "Count padding zeros in the average."),
        ],
        ranks=(_dims + 2,),
        keywords=("pool", "downsample"),
    )
for _dims, _cls in ((1, nn.AdaptiveAvgPool1d), (2, nn.AdaptiveAvgPool2d)):
    _layer(
        _cls.__name__,
        _cls,
        f"{_dims}-D adaptive average pooling to a fixed output size (1 = global average pool).",
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
        keywords=("global average pool", "gap"),
    )

_NORM_COMMON = [
    Param("eps", "float", 1e-5, "Added to the variance for stability.", min=0, exclusive_min=True),
    Param("momentum", "float", 0.1, "Running-statistics momentum.", min=0, max=1, nullable=True),
    Param("affine", "bool", True, "Learn a scale and shift."),
    Param("track_running_stats", "bool", True, "Keep running mean/var for eval mode."),
]
_layer(
    "BatchNorm1d",
    nn.BatchNorm1d,
    "Batch normalization over (B, C) or (B, C, L) inputs.",
    [inferred("num_features", 1, "Channels"), *_NORM_COMMON],
    ranks=(2, 3),
)
_layer(
    "BatchNorm2d",
    nn.BatchNorm2d,
    "Batch normalization over (B, C, H, W) inputs.",
    [inferred("num_features", 1, "Channels"), *_NORM_COMMON],
    ranks=(4,),
)
_layer(
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


def _last_dim(ctx: InferContext) -> int | None:
    shape = ctx.shape()
    return shape[-1] if shape else None


_layer(
    "LayerNorm",
    nn.LayerNorm,
    "Layer normalization over the last dimension.",
    [
        Param(
            "normalized_shape",
            "int",
            min=1,
            infer=_last_dim,
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
_layer(
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

_layer(
    "Dropout",
    nn.Dropout,
    "Randomly zeroes elements with probability p during training.",
    [Param("p", "float", 0.5, "Probability of an element being zeroed.", min=0, max=1)],
    keywords=("regularization",),
)
_layer(
    "Dropout2d",
    nn.Dropout2d,
    "Randomly zeroes whole channels with probability p during training.",
    [Param("p", "float", 0.5, "Probability of a channel being zeroed.", min=0, max=1)],
    ranks=(4,),
)
_layer(
    "Embedding",
    nn.Embedding,
    "Lookup table: integer token ids (B, T) → vectors (B, T, embedding_dim).",
    [
        size("num_embeddings", "Vocabulary size (largest id + 1)."),
        size("embedding_dim", "Size of each vector."),
        Param("padding_idx", "int", None, "Id whose vector stays zero.", nullable=True),
        Param(
            "max_norm",
            "float",
            None,
            "Renormalize vectors above this norm.",
            nullable=True,
            min=0,
            exclusive_min=True,
        ),
    ],
    inputs=(Port("in", dtype="int"),),
    keywords=("token", "lookup", "vocabulary"),
)


def _rnn_call(kind: str):
    def build(p, ins, m) -> str:
        x = ins["in"][0]
        mode = p.get("output", "last")
        if mode == "sequence":
            return f"{m}({x})[0]"
        if mode == "last":
            return f"{m}({x})[0][:, -1]"
        # final hidden state of the last layer (both directions stacked for bidirectional)
        return f"{m}({x})[1][0][-1]" if kind == "LSTM" else f"{m}({x})[1][-1]"

    return build


for _cls in (nn.LSTM, nn.GRU, nn.RNN):
    _params = [
        inferred("input_size", -1, "Input features per step"),
        size("hidden_size", "Hidden state size.", default=64),
        Param("num_layers", "int", 1, "Stacked recurrent layers.", min=1),
        BIAS,
        Param("dropout", "float", 0.0, "Dropout between stacked layers.", min=0, max=1),
        Param("bidirectional", "bool", False, "Run forward and backward over the sequence."),
    ]
    if _cls is nn.RNN:
        _params.insert(
            3, Param("nonlinearity", "choice", "tanh", "Activation.", choices=("tanh", "relu"))
        )
    _params.append(
        Param(
            "output",
            "choice",
            "last",
            "What the node outputs: the whole sequence (B, T, H), the last step (B, H), or the "
            "last layer's final hidden state (B, H).",
            choices=("sequence", "last", "hidden"),
            torch_arg=False,
        )
    )
    _layer(
        _cls.__name__,
        _cls,
        f"{_cls.__name__} over (B, T, features) sequences (batch first).",
        _params,
        inputs=(Port("in", ranks=(3,), layout="3-D (B, T, features)"),),
        hint="recurrent layers take (B, T, features) sequences",
        fixed_args={"batch_first": True},
        call=_rnn_call(_cls.__name__),
        keywords=("recurrent", "sequence", "rnn"),
    )


def _attention_call(p, ins, m) -> str:
    q = ins["query"][0]
    k = ins["key"][0] if ins.get("key") else q
    v = ins["value"][0] if ins.get("value") else k
    return f"{m}({q}, {k}, {v}, need_weights=False)[0]"


_layer(
    "MultiheadAttention",
    nn.MultiheadAttention,
    "Multi-head attention over (B, T, E); key and value default to the query (self-attention).",
    [
        Param(
            "embed_dim",
            "int",
            min=1,
            infer=lambda c: (c.shape("query") or (None,))[-1],
            positional=True,
            description="Model width E (inferred from the query).",
        ),
        size("num_heads", "Attention heads (must divide embed_dim).", default=4),
        Param("dropout", "float", 0.0, "Dropout on attention weights.", min=0, max=1),
        BIAS,
    ],
    inputs=(
        Port("query", ranks=(3,)),
        Port("key", ranks=(3,), optional=True),
        Port("value", ranks=(3,), optional=True),
    ),
    fixed_args={"batch_first": True},
    call=_attention_call,
    keywords=("attention", "transformer", "self-attention"),
)

_TRANSFORMER = [
    Param(
        "d_model",
        "int",
        min=1,
        infer=_last_dim,
        positional=True,
        description="Model width (inferred from the input).",
    ),
    size("nhead", "Attention heads (must divide d_model).", default=4),
    Param("dim_feedforward", "int", 2048, "Feed-forward hidden size.", min=1),
    Param("dropout", "float", 0.1, "Dropout.", min=0, max=1),
    Param("activation", "choice", "relu", "Feed-forward activation.", choices=("relu", "gelu")),
    Param("layer_norm_eps", "float", 1e-5, "LayerNorm epsilon.", min=0, exclusive_min=True),
    Param("norm_first", "bool", False, "Pre-norm (LayerNorm before attention / feed-forward)."),
    BIAS,
]
_layer(
    "TransformerEncoderLayer",
    nn.TransformerEncoderLayer,
    "Transformer encoder layer (self-attention + feed-forward) over (B, T, d_model).",
    _TRANSFORMER,
    inputs=(Port("in", ranks=(3,), layout="3-D (B, T, d_model)"),),
    fixed_args={"batch_first": True},
    keywords=("transformer", "attention", "encoder"),
)
_layer(
    "TransformerDecoderLayer",
    nn.TransformerDecoderLayer,
    "Transformer decoder layer: self-attention on tgt, cross-attention to memory, feed-forward.",
    [
        Param(
            "d_model",
            "int",
            min=1,
            infer=lambda c: (c.shape("tgt") or (None,))[-1],
            positional=True,
            description="Model width (inferred from tgt).",
        ),
        *_TRANSFORMER[1:],
    ],
    inputs=(Port("tgt", ranks=(3,)), Port("memory", ranks=(3,))),
    fixed_args={"batch_first": True},
    call=lambda p, ins, m: f"{m}({ins['tgt'][0]}, {ins['memory'][0]})",
    keywords=("transformer", "attention", "decoder"),
)

_layer(
    "Flatten",
    nn.Flatten,
    "Flattens dims start_dim..end_dim into one: (B, C, H, W) → (B, C·H·W).",
    [
        Param("start_dim", "int", 1, "First dim to flatten (0 is the batch).", min=0),
        Param("end_dim", "int", -1, "Last dim to flatten."),
    ],
    batch_preserving=False,
)
_layer(
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
_layer(
    "PixelShuffle",
    nn.PixelShuffle,
    "(B, C·r², H, W) → (B, C, H·r, W·r).",
    [size("upscale_factor", "Upscale factor r.", default=2)],
    ranks=(4,),
)
_layer(
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
_layer("Identity", nn.Identity, "Passes its input through unchanged.", [])
