"""call_module nodes → catalog nodes: a module becomes the catalog node of its class (lookup.py
reads its settings), MultiheadAttention keeps its query/key/value wiring, and an
nn.TransformerEncoder unrolls into its layers. A module whose weights are shared (called twice)
cannot be imported: each torchloom node has its own weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import fx, nn

from ..names import snake
from .fx_masks import causal
from .fx_values import Multi, Ref
from .graph import ImportFailed
from .lookup import Unsupported, module_params, spec_for_module

if TYPE_CHECKING:
    from .fx_converter import Converter


def convert_module(converter: Converter, node: fx.Node) -> Any:
    path = str(node.target)
    module = converter.modules[path]
    if isinstance(module, nn.TransformerEncoder):
        return _encoder_stack(converter, node, module, path)
    spec = spec_for_module(module)
    if spec is None:
        raise Unsupported(f"{type(module).__name__} is not in the catalog")
    calls = converter.module_calls[path] = converter.module_calls.get(path, 0) + 1
    has_state = any(True for _ in module.parameters()) or any(True for _ in module.buffers())
    if calls > 1 and has_state:
        raise ImportFailed(
            f"{path} ({type(module).__name__}) is called {calls} times: its weights are "
            "shared, and each torchloom node has its own"
        )
    params, inferred = module_params(module, spec)
    if spec.type == "MultiheadAttention":
        return _attention(converter, node, path, params, inferred)
    ports = [p.name for p in spec.input_ports(params)]
    masks = MASKS.get(spec.type, {})
    tensors, kwargs = list(node.args[: len(ports)]), dict(node.kwargs)
    extra = node.args[len(ports) :]
    if len(extra) > len(masks):
        raise Unsupported(f"{len(node.args)} inputs; the catalog node takes {len(ports)}")
    kwargs.update(zip(masks, extra, strict=False))  # masks given by position
    tensors += [kwargs.pop(p) for p in ports[len(tensors) :] if p in kwargs]
    length = _length(converter, tensors[0]) if tensors else None
    for name, value in kwargs.items():
        if masks.get(name):
            if causal(converter, value, length, name):
                params[masks[name]] = True
        elif name not in masks or not isinstance(value, bool | None):
            raise Unsupported(f"keyword arguments {sorted(node.kwargs)} in the call")
    args = [converter.tensor(a, node) for a in tensors]
    inputs = [(port, ref.node, ref.port) for port, ref in zip(ports, args, strict=False)]
    kw = {"label": path, "module_path": path if has_state else None}
    made = converter.g.add(converter.hint(node), spec.type, params, inputs, origin=path, **kw)
    made.inferred = inferred
    if spec.type in ("LSTM", "GRU", "RNN"):
        return Multi(made.id, spec.type)
    return Ref(made.id)


# Per layer: its mask arguments in order → the param a causal one sets ("" hints, taken as given).
MASKS: dict[str, dict[str, str]] = {
    "TransformerEncoderLayer": {"src_mask": "causal", "src_key_padding_mask": "", "is_causal": ""},
    "TransformerDecoderLayer": {
        "tgt_mask": "causal",
        "memory_mask": "memory_causal",
        "tgt_key_padding_mask": "",
        "memory_key_padding_mask": "",
        "tgt_is_causal": "",
        "memory_is_causal": "",
    },
}


def _length(converter: Converter, seq: Any) -> int | None:
    """The length T of a (B, T, E) sequence fx node."""
    shape = converter.shape(seq) if isinstance(seq, fx.Node) else None
    return shape[1] if shape is not None and len(shape) == 3 else None


def _attention(
    converter: Converter, node: fx.Node, path: str, params: dict, inferred: dict
) -> Multi:
    args = list(node.args)
    kwargs = dict(node.kwargs)
    for i, name in enumerate(("query", "key", "value")):
        if len(args) <= i and name in kwargs:
            args.append(kwargs.pop(name))
    mask = kwargs.pop("attn_mask", args[5] if len(args) > 5 else None)
    kwargs.pop("is_causal", None)  # a hint: the mask says it
    extra = {k: v for k, v in kwargs.items() if v is not None and k != "need_weights"}
    if extra or (len(args) > 3 and args[3] is not None):
        raise Unsupported(f"a padding mask or extra arguments ({', '.join(sorted(extra))})")
    args = args[:3]
    refs = [converter.tensor(a, node) for a in args]
    self_attention = all(r == refs[0] for r in refs)
    if causal(converter, mask, _length(converter, args[0]), "attn_mask"):
        if not self_attention:
            raise Unsupported("a causal mask on cross-attention")
        params = {**params, "causal": True}
    inputs = [("query", refs[0].node, refs[0].port)]
    if len(refs) > 1 and refs[1] != refs[0]:
        inputs.append(("key", refs[1].node, refs[1].port))
    if len(refs) > 2 and refs[2] != refs[1]:
        inputs.append(("value", refs[2].node, refs[2].port))
    made = converter.g.add(
        converter.hint(node),
        "MultiheadAttention",
        params,
        inputs,
        label=path,
        module_path=path,
        origin=path,
    )
    made.inferred = inferred
    return Multi(made.id, "MultiheadAttention")


def _encoder_stack(
    converter: Converter, node: fx.Node, module: nn.TransformerEncoder, path: str
) -> Ref:
    """nn.TransformerEncoder: its layers one after another (and its final norm)."""
    kwargs = dict(node.kwargs)
    mask = kwargs.pop("mask", node.args[1] if len(node.args) > 1 else None)
    kwargs.pop("is_causal", None)  # a hint: the mask says it
    if len(node.args) > 2 or any(v is not None for v in kwargs.values()):
        raise Unsupported("a padding mask or extra arguments")
    is_causal = causal(converter, mask, _length(converter, node.args[0]), "mask")
    ref = converter.tensor(node.args[0], node)
    children = [(f"{path}.layers.{i}", layer) for i, layer in enumerate(module.layers)]
    if module.norm is not None:
        children.append((f"{path}.norm", module.norm))
    for child_path, child in children:
        spec = spec_for_module(child)
        if spec is None:
            raise Unsupported(f"{child_path} ({type(child).__name__}) is not in the catalog")
        params, inferred = module_params(child, spec)
        if is_causal and spec.type == "TransformerEncoderLayer":
            params["causal"] = True
        made = converter.g.add(
            snake(child_path),
            spec.type,
            params,
            [("in", ref.node, ref.port)],
            label=child_path,
            module_path=child_path,
            origin=child_path,
        )
        made.inferred = inferred
        ref = Ref(made.id)
    return ref
