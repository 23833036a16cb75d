"""Token and sequence layers: Embedding, and LSTM / GRU / RNN run batch first (category
"layers").
"""

from __future__ import annotations

from torch import nn

from .layer_entry import BIAS, inferred, layer, size
from .spec import Param, Port


def _embedding_init(p, ref: str) -> list[str]:
    if p.get("init_std") is None:
        return []
    lines = [f"nn.init.normal_({ref}.weight, std={p['init_std']!r})"]
    if p.get("padding_idx") is not None:  # the padding vector stays zero, as torch builds it
        lines.append(f"nn.init.zeros_({ref}.weight[{p['padding_idx']}])")
    return lines


layer(
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
        Param(
            "init_std",
            "float",
            None,
            "Draw the vectors from N(0, std²) (GPT: 0.02, so that a tied output head starts "
            "with small logits); default: PyTorch's N(0, 1).",
            nullable=True,
            min=0,
            exclusive_min=True,
            torch_arg=False,
        ),
    ],
    inputs=(Port("in", dtype="int"),),
    post_init=_embedding_init,
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
    layer(
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
