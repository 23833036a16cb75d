"""The ops torch's exporter writes for an nn.TransformerEncoderLayer, found as one region and
imported as one TransformerEncoderLayer node with its weights.

The exporter decomposes the layer into ~40 ops whose intermediate tensors fold the batch into
the heads ((B·heads, T, d)), which no batch-first catalog node can hold. So the region is found
by its shape — from a Transpose to (T, B, D) feeding a (D, 3D) in-projection, to the LayerNorm
(post-norm) or residual Add (pre-norm) after four projections — its weights read in order, and
the match is *proved*: the region is run with onnxruntime on a random input and compared with
the torch layer built from those weights (every head count and activation tried). Nothing is
imported on a structural guess alone. A region holding a Trilu (the square subsequent mask
the exporter builds from the input's shape: Expand → Trilu → Equal → Where, added to the
scores) is proved against the causal layer and imported with causal=True.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

TOLERANCE = 1e-4


@dataclass
class EncoderMatch:
    start: int  # index of the region's first node
    region: set[int]
    source: str  # the (B, T, D) value the layer reads
    output: str
    params: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    type_: str = "TransformerEncoderLayer"  # the catalog node the region becomes
    more: dict = field(default_factory=dict)  # its other input ports: port → ONNX value


def find_encoder_layers(nodes: list, consts: dict, shapes: dict, outputs: set[str], opsets) -> list:
    consumers: dict[str, list[int]] = {}
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(i)
        for name in node.output:
            producer[name] = i
    found: list[EncoderMatch] = []
    taken: set[int] = set()
    for i, node in enumerate(nodes):
        if i in taken or node.op_type != "Transpose" or _perm(node) != [1, 0, 2]:
            continue
        if not any(_in_projection(nodes[c], consts) for c in consumers.get(node.output[0], [])):
            continue
        starts = [(i, node.input[0], False)]
        before = producer.get(node.input[0])
        if before is not None and nodes[before].op_type == "LayerNormalization":
            starts.append((before, nodes[before].input[0], True))
        for start, source, norm_first in starts:
            match = _match_from(nodes, consts, shapes, outputs, consumers, start, source)
            if match is not None and _prove(nodes, consts, shapes, match, norm_first, opsets):
                found.append(match)
                taken |= match.region
                break
    return found


def _perm(node) -> list:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), [])


def _in_projection(node, consts) -> bool:
    w = consts.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
    return w is not None and w.ndim == 2 and w.shape[1] == 3 * w.shape[0]


def _match_from(nodes, consts, shapes, outputs, consumers, start, source):
    """The smallest region from `start` ending at a LayerNorm or Add after four projections
    whose values are read only inside it."""
    forward, stack = set(), [start]
    while stack:
        i = stack.pop()
        if i in forward:
            continue
        forward.add(i)
        for name in nodes[i].output:
            stack += consumers.get(name, [])
    for end in sorted(forward):
        if nodes[end].op_type not in ("LayerNormalization", "Add"):
            continue
        region = _backward(nodes, forward, end)
        linears = _linears(nodes, consts, region)
        if linears is None or len(linears) < 4:
            continue
        if len(linears) > 4:
            return None
        if not _closed(nodes, region, end, source, consts, consumers, outputs):
            continue
        match = EncoderMatch(start, region, source, nodes[end].output[0])
        if _read_weights(nodes, consts, region, linears, match):
            return match
    return None


def _backward(nodes, forward: set[int], end: int) -> set[int]:
    producer = {name: i for i in forward for name in nodes[i].output}
    region, stack = set(), [end]
    while stack:
        i = stack.pop()
        if i in region:
            continue
        region.add(i)
        stack += [producer[n] for n in nodes[i].input if n in producer]
    return region


def _closed(nodes, region, end, source, consts, consumers, outputs) -> bool:
    made = {n for i in region for n in nodes[i].output}
    for i in region:
        for name in nodes[i].input:
            if name and name not in made and name != source and name not in consts:
                return False
        if i == end:
            continue
        for name in nodes[i].output:
            if name in outputs or any(c not in region for c in consumers.get(name, [])):
                return False
    return True


def _linears(nodes, consts, region) -> list | None:
    """(weight as torch holds it (out, in), bias or None, node index) per projection, in order."""
    found = []
    for i in sorted(region):
        node = nodes[i]
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        w = consts.get(node.input[1])
        if w is None:
            continue  # q @ kᵀ, attn @ v
        if node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            bias = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            found.append((w if trans_b else w.T, bias, i))
        else:
            found.append((w.T, None, i))
    return found


def _read_weights(nodes, consts, region, linears, match) -> bool:
    w_in, w_out, w1, w2 = (w for w, _, _ in linears)
    d = w_in.shape[1]
    ff = w1.shape[0]
    if w_in.shape != (3 * d, d) or w_out.shape != (d, d) or w1.shape != (ff, d):
        return False
    if w2.shape != (d, ff):
        return False
    biases = []
    for (_, bias, i), out in zip(linears, (3 * d, d, ff, d), strict=True):
        if bias is None:
            bias = _added_bias(nodes, consts, region, nodes[i].output[0], out)
        biases.append(np.zeros(out, np.float32) if bias is None else bias.reshape(-1))
    norms = [nodes[i] for i in sorted(region) if nodes[i].op_type == "LayerNormalization"]
    if len(norms) != 2 or any(consts.get(n.input[1]) is None for n in norms):
        return False
    eps = {next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5) for n in norms}
    match.params = {"dim_feedforward": int(ff), "layer_norm_eps": float(str(np.float32(eps.pop())))}
    weights = {
        "self_attn.in_proj_weight": w_in,
        "self_attn.in_proj_bias": biases[0],
        "self_attn.out_proj.weight": w_out,
        "self_attn.out_proj.bias": biases[1],
        "linear1.weight": w1,
        "linear1.bias": biases[2],
        "linear2.weight": w2,
        "linear2.bias": biases[3],
    }
    for k, norm in enumerate(norms, start=1):
        weights[f"norm{k}.weight"] = consts[norm.input[1]]
        bias = consts.get(norm.input[2]) if len(norm.input) > 2 and norm.input[2] else None
        weights[f"norm{k}.bias"] = np.zeros(d, np.float32) if bias is None else bias
    match.weights = weights
    return True


def _added_bias(nodes, consts, region, value: str, size: int):
    for i in region:
        node = nodes[i]
        if node.op_type == "Add" and node.input[0] == value:
            bias = consts.get(node.input[1])
            if bias is not None and bias.size == size:
                return bias
    return None


def _prove(nodes, consts, shapes, match: EncoderMatch, norm_first: bool, opsets) -> bool:
    """Run the region with onnxruntime and the torch layer on one random input; keep the first
    head count and activation that agree."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    shape = shapes.get(match.source) or ()
    if len(shape) != 3 or not all(isinstance(s, int) for s in shape[1:]):
        return False
    steps, d = shape[1], shape[2]
    region_nodes = [nodes[i] for i in sorted(match.region)]
    used = {n for node in region_nodes for n in node.input if n in consts}
    graph = helper.make_graph(
        region_nodes,
        "encoder_layer",
        [helper.make_tensor_value_info(match.source, TensorProto.FLOAT, ["B", steps, d])],
        [helper.make_tensor_value_info(match.output, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(consts[n]), n) for n in sorted(used)],
    )
    model = helper.make_model(graph, opset_imports=list(opsets))  # the model's own opsets
    x = np.random.default_rng(0).standard_normal((2, steps, d)).astype(np.float32)
    try:
        session = ort.InferenceSession(
            onnx.shape_inference.infer_shapes(model).SerializeToString(),
            providers=["CPUExecutionProvider"],
        )
        (expected,) = session.run(None, {match.source: x})
    except Exception:
        return False
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in match.weights.items()}
    # a Trilu in the region: the mask torch's exporter writes for a causal layer, tried first;
    # a mask of a fixed length may also be folded into a constant added to the scores
    trilu = any(nodes[i].op_type == "Trilu" for i in match.region)
    for masked in (True, False) if trilu else (False, True):
        if _prove_with(match, state, x, expected, norm_first, masked):
            return True
    return False


def _prove_with(match: EncoderMatch, state: dict, x, expected, norm_first: bool, masked: bool):
    d, steps = x.shape[2], x.shape[1]
    mask = torch.nn.Transformer.generate_square_subsequent_mask(steps) if masked else None
    for nhead in [h for h in range(1, d + 1) if d % h == 0]:
        for activation in ("relu", "gelu"):
            layer = torch.nn.TransformerEncoderLayer(
                d,
                nhead,
                match.params["dim_feedforward"],
                0.0,
                activation,
                match.params["layer_norm_eps"],
                batch_first=True,
                norm_first=norm_first,
            ).eval()
            layer.load_state_dict(state)
            with torch.no_grad():
                got = layer(torch.from_numpy(x), src_mask=mask, is_causal=masked).numpy()
            if got.shape == expected.shape and np.abs(got - expected).max() <= TOLERANCE:
                match.params.update(nhead=nhead, activation=activation, norm_first=norm_first)
                if masked:
                    match.params["causal"] = True
                return True
    return False
