"""Every catalog entry: a minimal working graph around it, and its defaults against torch's."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field

import pytest
import torch

from graph_compiler import CATALOG, analyze, build_module, build_plan, catalog_json, generate
from graph_compiler.catalog import CATEGORIES, REQUIRED
from graph_compiler.render import torch_defaults
from tests.helpers import document, edge, node

BATCHES = (3, 5)  # real batch sizes; 5 is neither of the two that shape inference runs (2, 3)

# --- the contexts: what each node type needs around it ------------------------------------------


@dataclass
class Ctx:
    """A minimal graph around one node under test (id "node").

    dataset: the Dataset params; pre: (id, type, params[, source]) glue nodes, each fed by the
    previous one (or by data.x) unless a source "x" / "y" / "id" / "id.port" is given; ports: the
    node's input port → source(s) (default: its first input port ← the last glue node); head:
    (id, type, params) layers after the node's first output that end in the loss input (default:
    Flatten → Linear(the dataset's class count); an item's fourth element: more sources into its
    "in", e.g. an Add's second input); custom: analyze with allow_custom_code.
    """

    dataset: dict = field(default_factory=lambda: {"source": "digits"})
    params: dict = field(default_factory=dict)
    pre: list = field(default_factory=list)
    ports: dict | None = None
    head: list | None = None
    loss: str = "CrossEntropyLoss"
    custom: bool = False
    probes: bool = True  # an MSELoss on each output of the node (not for integer outputs)


DIGITS = {"source": "digits"}  # x (B, 64) float, y (B,) 10 classes
IMAGES = {"source": "digits_images"}  # x (B, 1, 8, 8)
SEQ = {"source": "sine_classify"}  # x (B, 32, 1), y (B,) 3 classes
REGRESSION = {"source": "diabetes"}  # x (B, 10), y (B, 1) float
TO_1D = [("glue", "Unsqueeze", {"dim": 1})]  # (B, 64) → (B, 1, 64)
TO_3D = [("glue", "Reshape", {"shape": [1, 4, 4, 4]})]  # (B, 64) → (B, 1, 4, 4, 4)
WIDE_SEQ = [("glue", "Linear", {"out_features": 16})]  # (B, 32, 1) → (B, 32, 16)
ADD_HEAD = [("flat", "Flatten", {}), ("fc_head", "Linear", {"out_features": 10})]
TWO = [("a", "Linear", {"out_features": 8}, "x"), ("b", "Linear", {"out_features": 8}, "x")]

LAYER_CTX: dict[str, Ctx] = {
    "Linear": Ctx(params={"out_features": 8}),
    "Bilinear": Ctx(params={"out_features": 8}, ports={"in1": ["x"], "in2": ["x"]}),
    "Conv1d": Ctx(params={"out_channels": 4}, pre=TO_1D),
    "Conv2d": Ctx(IMAGES, {"out_channels": 4}),
    "Conv3d": Ctx(params={"out_channels": 4}, pre=TO_3D),
    "ConvTranspose1d": Ctx(params={"out_channels": 4}, pre=TO_1D),
    "ConvTranspose2d": Ctx(IMAGES, {"out_channels": 4}),
    "ConvTranspose3d": Ctx(params={"out_channels": 4}, pre=TO_3D),
    "MaxPool1d": Ctx(pre=TO_1D),
    "MaxPool2d": Ctx(IMAGES),
    "MaxPool3d": Ctx(pre=TO_3D),
    "AvgPool1d": Ctx(pre=TO_1D),
    "AvgPool2d": Ctx(IMAGES),
    "AvgPool3d": Ctx(pre=TO_3D),
    "AdaptiveAvgPool1d": Ctx(pre=TO_1D),
    "AdaptiveAvgPool2d": Ctx(IMAGES),
    "AdaptiveMaxPool1d": Ctx(pre=TO_1D),
    "AdaptiveMaxPool2d": Ctx(IMAGES),
    "BatchNorm1d": Ctx(),
    "BatchNorm2d": Ctx(IMAGES),
    "InstanceNorm2d": Ctx(IMAGES),
    "LayerNorm": Ctx(),
    "RMSNorm": Ctx(),
    "GroupNorm": Ctx(),  # 64 channels, 8 groups
    "Dropout": Ctx(),
    "Dropout1d": Ctx(pre=TO_1D),
    "Dropout2d": Ctx(IMAGES),
    "Embedding": Ctx(params={"num_embeddings": 10, "embedding_dim": 8}, ports={"in": ["y"]}),
    "LSTM": Ctx(SEQ),
    "GRU": Ctx(SEQ),
    "RNN": Ctx(SEQ),
    "MultiheadAttention": Ctx(SEQ, pre=WIDE_SEQ),
    "TransformerEncoderLayer": Ctx(SEQ, pre=WIDE_SEQ),
    "TransformerDecoderLayer": Ctx(SEQ, pre=WIDE_SEQ, ports={"tgt": ["glue"], "memory": ["glue"]}),
    "ScaledDotProductAttention": Ctx(
        SEQ, pre=WIDE_SEQ, ports={"query": ["glue"], "key": ["glue"], "value": ["glue"]}
    ),
    "Flatten": Ctx(IMAGES),
    "Unflatten": Ctx(params={"unflattened_size": [8, 8]}),
    "PixelShuffle": Ctx(IMAGES, pre=[("glue", "Conv2d", {"out_channels": 4, "padding": 1})]),
    "Upsample": Ctx(IMAGES),
    "Identity": Ctx(),
    # activations: (B, 64)
    **{
        name: Ctx()
        for name in (
            "ReLU",
            "LeakyReLU",
            "PReLU",
            "ELU",
            "GELU",
            "SiLU",
            "Mish",
            "Sigmoid",
            "Tanh",
            "Softplus",
            "Hardswish",
            "ReLU6",
            "Hardtanh",
            "Hardsigmoid",
            "GLU",  # (B, 64) → (B, 32)
            "Softmax",
            "LogSoftmax",
        )
    },
    # merges / ops
    "Add": Ctx(pre=TWO, ports={"in": ["a", "b"]}),
    "Multiply": Ctx(pre=TWO, ports={"in": ["a", "b"]}),
    "Concat": Ctx(pre=TWO, ports={"in": ["a", "b"]}),
    "MatMul": Ctx(
        pre=[("a", "Unsqueeze", {"dim": 2}, "x"), ("b", "Unsqueeze", {"dim": 1}, "x")],
        ports={"a": ["a"], "b": ["b"]},
    ),
    "Mean": Ctx(IMAGES),
    "Sum": Ctx(IMAGES),
    "Scale": Ctx(params={"scale": 0.5, "shift": -1.0}),
    "Chunk": Ctx(),
    "Split": Ctx(params={"split_sizes": [16, 48]}),
    "Slice": Ctx(),
    "Select": Ctx(IMAGES),
    "Squeeze": Ctx(SEQ),
    "Unsqueeze": Ctx(),
    "Transpose": Ctx(IMAGES),
    "Permute": Ctx(SEQ, params={"dims": [0, 2, 1]}),
    "Reshape": Ctx(params={"shape": [8, 8]}),
    "CustomLayer": Ctx(ports={"x": ["x"]}, custom=True),
    # learned tensors: a (1, 64) Parameter added to x; Expand of one to x's batch; position ids
    # of x looked up in an Embedding, squeezed and added to x
    "Parameter": Ctx(
        params={"shape": [1, 64]}, ports={}, head=[("sum", "Add", {}, ["x"]), *ADD_HEAD]
    ),
    "Expand": Ctx(
        pre=[("tok", "Parameter", {"shape": [1, 64], "init": "normal"}, None)],
        ports={"in": ["tok"], "like": ["x"]},
    ),
    "PositionIds": Ctx(
        head=[
            ("pos", "Embedding", {"num_embeddings": 64, "embedding_dim": 1}),
            ("pos_1d", "Squeeze", {"dim": -1}),
            ("sum", "Add", {}, ["x"]),
            *ADD_HEAD,
        ],
        probes=False,  # int64 ids: the Embedding after it reads them
    ),
    # the shipped reviews: (B, 66) char ids padded with 0, embedded, pooled over real positions
    "MaskedPool": Ctx(
        {"source": "reviews"},
        pre=[
            ("emb", "Embedding", {"num_embeddings": 25, "embedding_dim": 8, "padding_idx": 0}),
            ("pad", "PaddingMask", {"pad_id": 0}, "x"),
        ],
        ports={"in": ["emb"], "mask": ["pad"]},
    ),
    # the class ids as a (B, 1) batch of token ids; the bool mask scales x on its way out
    "PaddingMask": Ctx(
        pre=[("ids", "Unsqueeze", {"dim": 1}, "y")],
        head=[("mul", "Multiply", {}, ["x"]), *ADD_HEAD],
        probes=False,  # bool output
    ),
}

LOSS_CTX: dict[str, Ctx] = {
    "CrossEntropyLoss": Ctx(pre=[("fc", "Linear", {"out_features": 10})]),
    "NLLLoss": Ctx(pre=[("fc", "Linear", {"out_features": 10}), ("logp", "LogSoftmax", {})]),
    "BCELoss": Ctx(REGRESSION, pre=[("fc", "Linear", {"out_features": 1}), ("p", "Sigmoid", {})]),
    "CosineEmbeddingLoss": Ctx(pre=TWO, ports={"input1": ["a"], "input2": ["b"], "target": ["y"]}),
    "CustomLoss": Ctx(REGRESSION, pre=[("fc", "Linear", {"out_features": 1})], custom=True),
    **{
        name: Ctx(REGRESSION, pre=[("fc", "Linear", {"out_features": 1})])
        for name in (
            "MSELoss",
            "L1Loss",
            "SmoothL1Loss",
            "HuberLoss",
            "BCEWithLogitsLoss",
            "KLDivLoss",
        )
    },
}

SCHEDULER_PARAMS = {"StepLR": {"step_size": 2}, "MultiStepLR": {"milestones": [2, 4]}}

# Entries tested through the graphs of other entries.
STRUCTURE = ("Dataset", "Training", "Block", "Input", "Output")

# Known bugs, one per type: the test documents the intended behaviour (xfail, strict).
XFAIL: dict[str, str] = {}


def _source(ref: str) -> tuple[str, str]:
    if ref in ("x", "y"):
        return "data", ref
    node_id, _, port = ref.partition(".")
    return node_id, port or "out"


def _head(classes: int | None) -> list:
    return [("flat", "Flatten", {}), ("fc_head", "Linear", {"out_features": classes or 1})]


def _wire_pre(ctx: Ctx, nodes: list, edges: list) -> str:
    prev = "x"
    for item in ctx.pre:
        node_id, type_, params = item[:3]
        src = item[3] if len(item) > 3 else prev
        nodes.append(node(node_id, type_, params))
        if src is not None:  # None: a node without inputs (Parameter)
            s, p = _source(src)
            edges.append(edge(s, node_id, p, "in"))
        prev = node_id
    return prev


def _wire_ports(ctx: Ctx, spec, params: dict, last: str, edges: list, target: str) -> None:
    ports = ctx.ports if ctx.ports is not None else {spec.input_ports(params)[0].name: [last]}
    for port, sources in ports.items():
        for src in sources:
            s, p = _source(src)
            edges.append(edge(s, target, p, port))


def _classes(dataset: dict) -> int | None:
    classes = {"digits": 10, "digits_images": 10, "sine_classify": 3, "reviews": 2}
    return classes.get(dataset["source"])


def layer_doc(type_: str) -> dict:
    """data → glue → node → Flatten → Linear → CrossEntropyLoss, plus an MSE probe per output."""
    ctx = LAYER_CTX[type_]
    spec = CATALOG[type_]
    nodes = [node("data", "Dataset", ctx.dataset)]
    edges: list = []
    last = _wire_pre(ctx, nodes, edges)
    nodes.append(node("node", type_, ctx.params))
    _wire_ports(ctx, spec, ctx.params, last, edges, "node")
    defaults = {p.name: p.default for p in spec.params if p.default is not REQUIRED}
    outs = [p.name for p in spec.output_ports({**defaults, **ctx.params})]
    prev, port = "node", outs[0]
    classes = _classes(ctx.dataset)
    for node_id, t, params, *more in ctx.head or _head(
        classes
    ):  # more: further sources into "in" (an Add's x)
        nodes.append(node(node_id, t, params))
        edges.append(edge(prev, node_id, port, "in"))
        for src in more[0] if more else ():
            source, source_port = _source(src)
            edges.append(edge(source, node_id, source_port, "in"))
        prev, port = node_id, "out"
    nodes.append(node("loss", ctx.loss if classes else "MSELoss"))
    edges += [edge(prev, "loss", port, "input"), edge("data", "loss", "y", "target")]
    nodes.append(node("opt", "Adam"))
    edges.append(edge("loss", "opt", "loss", "loss"))
    for out in outs if ctx.probes else ():  # probes: every output of the node is a model output
        nodes.append(node(f"probe_{out}", "MSELoss"))
        edges.append(edge("node", f"probe_{out}", out, "input"))
        edges.append(edge("node", f"probe_{out}", out, "target"))
        edges.append(edge(f"probe_{out}", "opt", "loss", "loss"))
    nodes.append(node("train", "Training", {"epochs": 2}))
    return document(nodes, edges, name=f"{type_} test")


def loss_doc(type_: str) -> dict:
    ctx = LOSS_CTX[type_]
    spec = CATALOG[type_]
    nodes = [node("data", "Dataset", ctx.dataset)]
    edges: list = []
    last = _wire_pre(ctx, nodes, edges)
    nodes.append(node("node", type_, ctx.params))
    ports = ctx.ports or {"input": [last], "target": ["y"]}
    _wire_ports(Ctx(ports=ports), spec, {}, last, edges, "node")
    nodes += [node("opt", "Adam"), node("train", "Training", {"epochs": 2})]
    edges.append(edge("node", "opt", "loss", "loss"))
    return document(nodes, edges, name=f"{type_} test")


def mlp_doc(optimizer: str = "Adam", schedulers: tuple = ()) -> dict:
    """digits → Linear(10) → CE → optimizer (→ scheduler(s), the last one being `sched`)."""
    nodes = [
        node("data", "Dataset", DIGITS),
        node("fc", "Linear", {"out_features": 10}),
        node("loss", "CrossEntropyLoss"),
        node("opt", optimizer),
        node("train", "Training", {"epochs": 3}),
    ]
    edges = [
        edge("data", "fc", "x", "in"),
        edge("fc", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    for node_id, type_, params in schedulers:
        nodes.append(node(node_id, type_, params))
        if type_ != "SequentialLR":
            edges.append(edge("opt", node_id, "optimizer", "optimizer"))
    if any(t == "SequentialLR" for _, t, _ in schedulers):
        edges += [
            edge("warm", "sched", "scheduler", "first"),
            edge("cos", "sched", "scheduler", "then"),
        ]
    return document(nodes, edges, name="mlp test")


def block_doc() -> dict:
    res = {
        "nodes": [
            node("x", "Input"),
            node("fc", "Linear", {"out_features": 16}),
            node("act", "ReLU"),
            node("out", "Output"),
        ],
        "edges": [edge("x", "fc"), edge("fc", "act"), edge("act", "out")],
    }
    nodes = [
        node("data", "Dataset", DIGITS),
        node("node", "Block", {"block": "Res", "repeat": 2}),
        node("fc", "Linear", {"out_features": 10}),
        node("loss", "CrossEntropyLoss"),
        node("opt", "Adam"),
        node("train", "Training", {"epochs": 2}),
    ]
    edges = [
        edge("data", "node", "x", "x"),
        edge("node", "fc", "out", "in"),
        edge("fc", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    return document(nodes, edges, blocks={"Res": res}, name="block test")


def doc_for(type_: str) -> tuple[dict, bool]:
    """(document, allow_custom_code) exercising `type_`."""
    spec = CATALOG[type_]
    if type_ in LAYER_CTX:
        return layer_doc(type_), LAYER_CTX[type_].custom
    if type_ in LOSS_CTX:
        return loss_doc(type_), LOSS_CTX[type_].custom
    if spec.role == "optimizer":
        return mlp_doc(type_), False
    if type_ == "SequentialLR":
        chain_ = (
            ("warm", "LinearLR", {"total_iters": 2}),
            ("cos", "CosineAnnealingLR", {}),
            ("sched", "SequentialLR", {"milestone": 2}),
        )
        return mlp_doc(schedulers=chain_), False
    if spec.role == "scheduler":
        return mlp_doc(schedulers=(("sched", type_, SCHEDULER_PARAMS.get(type_, {})),)), False
    if type_ in ("Block", "Input", "Output"):
        return block_doc(), False
    return mlp_doc(), False  # Dataset, Training


def _params(types):
    return [
        pytest.param(t, marks=pytest.mark.xfail(reason=XFAIL[t], strict=True)) if t in XFAIL else t
        for t in types
    ]


def test_every_entry_has_a_context():
    covered = set(LAYER_CTX) | set(LOSS_CTX) | set(STRUCTURE)
    covered |= {t for t, s in CATALOG.items() if s.role in ("optimizer", "scheduler")}
    assert covered == set(CATALOG), set(CATALOG) ^ covered


def _batch(analysis, size: int) -> dict[str, torch.Tensor]:
    data = analysis.data
    gen = torch.Generator().manual_seed(0)
    if data.x_dtype == "int64":  # token ids, some of them the pad id
        x = torch.randint(0, data.vocab_size or 2, (size, *data.x_shape), generator=gen)
    else:
        x = torch.randn((size, *data.x_shape), generator=gen)
    if data.num_classes:
        y = torch.randint(0, data.num_classes, (size, *data.y_shape), generator=gen)
    else:
        y = torch.rand((size, *data.y_shape), generator=gen)
    return {"x": x, "y": y}


@pytest.mark.parametrize("type_", _params(sorted(CATALOG)))
def test_entry_builds_and_runs(type_):
    doc, custom = doc_for(type_)
    a = analyze(doc, allow_custom_code=custom)
    assert a.ok, [str(e) for e in a.errors]
    assert not a.errors, [str(e) for e in a.errors]  # not even a warning
    present = {n.spec.type for n in a.top.nodes.values()}
    for inst in a.instances.values():
        present |= {n.spec.type for i in inst for n in i.nodes.values()}
    assert type_ in present

    # every model node has its output shapes
    for r in a.model_nodes():
        assert r.outputs, r.node.id
        for info in r.outputs.values():
            assert info.shape and all(str(d) for d in info.shape)
    node_result = a.result("node")
    if node_result is not None and node_result.spec.role in ("layer", "op", "custom", "block"):
        assert node_result.outputs
        json.dumps(a.to_json())  # the editor's view is JSON

    source = generate(a)
    assert "class " in source and "def forward" in source
    compile(source, "<model>", "exec")

    model = build_module(doc, allow_custom_code=custom, seed=0)
    plan = build_plan(doc, allow_custom_code=custom)
    iface = plan.compiled.interface
    for size in BATCHES:
        batch = _batch(a, size)
        model.eval()
        with torch.no_grad():
            out = model(*(batch[name] for name in iface.inputs))
        outs = out if isinstance(out, tuple) else (out,)
        assert len(outs) == len(iface.outputs)
        for tensor, (node_id, port) in zip(outs, iface.outputs, strict=True):
            info = a.result(node_id).outputs[port]
            assert tuple(tensor.shape) == info.concrete(size), (node_id, port, str(info))
            assert str(tensor.dtype).removeprefix("torch.") == info.dtype

    # one real training step through the plan: losses, optimizer, scheduler
    batch = _batch(a, BATCHES[0])
    plan.model.train()
    outputs = plan.forward(batch)
    total, parts = plan.compute_loss(outputs, batch)
    assert total.dim() == 0 and torch.isfinite(total)
    assert all(p.dim() == 0 for p in parts.values())
    plan.optimizer.zero_grad()
    total.backward()
    plan.optimizer.step()
    if plan.scheduler is not None:
        if plan.scheduler_monitor:
            plan.scheduler.step(total.item())
        else:
            plan.scheduler.step()


# --- defaults agree with torch -----------------------------------------------------------------

# Intentional differences between a catalog default and the torch constructor's default.
ALLOWED_DEFAULT_DIFFERENCES = {
    # torch's dim=None means "implicit dim" (deprecated, warns); the editor needs a concrete dim,
    # and dim 1 is the class dimension of (B, C) logits.
    ("Softmax", "dim"),
    ("LogSoftmax", "dim"),
    # torch has no default scale (size or scale_factor must be given); 2× is the useful default.
    ("Upsample", "scale_factor"),
    # torch ≥ 2.x defaults SGD to lr=1e-3; 0.01 is the classic SGD starting point we chose.
    ("SGD", "lr"),
    # torch's "mean" divides by the number of elements too (and warns); "batchmean" is the true
    # KL divergence, and what torch says "mean" will become.
    ("KLDivLoss", "reduction"),
}


# torch's defaults are read off what torch builds, not off signatures (codegen reads those, with
# graph_compiler.render.torch_defaults, to leave defaults out): a catalog default matches torch's
# when building with it passed gives the same object as building without it.

# values for the arguments a torch class requires: only so that it can be built
_REQUIRED_VALUES = {"normalized_shape": 4, "unflattened_size": (2, 2), "milestones": [1]}
_REQUIRED_BY_CLASS = {
    torch.nn.LSTM: {"input_size": 2, "hidden_size": 2},  # (*args, **kwargs) signatures
    torch.nn.GRU: {"input_size": 2, "hidden_size": 2},
    torch.nn.RNN: {"input_size": 2, "hidden_size": 2},
    torch.optim.lr_scheduler.OneCycleLR: {"max_lr": 0.1, "total_steps": 10},
}


def _required(cls: type) -> dict:
    if cls in _REQUIRED_BY_CLASS:
        return dict(_REQUIRED_BY_CLASS[cls])
    return {
        p.name: _REQUIRED_VALUES.get(p.name, 2)
        for p in inspect.signature(cls).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in ("params", "optimizer")  # passed positionally by _built
    }


def _state(value):
    """A built object's state as comparable data (parameters by shape: their values are random)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype)
    if isinstance(value, torch.nn.Module):
        return (type(value).__name__, _state(vars(value)))
    if isinstance(value, dict):
        return {k: _state(v) for k, v in value.items() if not str(k).startswith("_forward")}
    if isinstance(value, list | tuple):
        return tuple(_state(v) for v in value)
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    if isinstance(value, int | float | str | bool | type(None)):
        return value
    return type(value).__name__  # an optimizer a scheduler holds, a weak reference, ...


def _built(cls: type, **kwargs):
    """What torch builds from `kwargs` and the required arguments, as comparable data."""
    kwargs = {**_required(cls), **kwargs}
    if issubclass(cls, torch.optim.Optimizer):
        return _state(cls([torch.nn.Parameter(torch.zeros(1))], **kwargs).defaults)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    if issubclass(cls, torch.optim.lr_scheduler.SequentialLR):
        kwargs["schedulers"] = [torch.optim.lr_scheduler.ConstantLR(optimizer)]
        kwargs["milestones"] = []
    if issubclass(
        cls, torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau
    ):
        return _state(vars(cls(optimizer, **kwargs)))
    return _state(vars(cls(**kwargs)))


def _default_pairs():
    """(type, param, catalog default, matches torch) for every defaulted torch argument."""
    for type_, spec in sorted(CATALOG.items()):
        if spec.torch_class is None:
            continue
        required = set(_required(spec.torch_class))
        plain = _built(spec.torch_class)
        for p in spec.params:
            if p.default is REQUIRED or not p.torch_arg or p.name in required:
                continue
            ours = tuple(p.default) if isinstance(p.default, list) else p.default
            try:
                built = _built(spec.torch_class, **{p.name: ours})
            except TypeError as exc:  # not torch's name: SequentialLR's first / then / milestone
                if "unexpected keyword argument" not in str(exc):
                    raise
                continue
            yield type_, p.name, p.default, built == plain


def test_defaults_match_torch():
    differences = {(t, name) for t, name, _, same in _default_pairs() if not same}
    for t, name in sorted(differences - ALLOWED_DEFAULT_DIFFERENCES):
        print(f"default differs from torch's: {t}.{name}")
    # the allow-list holds exactly the real differences
    assert differences == ALLOWED_DEFAULT_DIFFERENCES


def test_defaults_checked_for_many_params():
    # guard against the comparison silently covering nothing
    assert len(list(_default_pairs())) > 150


def test_codegen_leaves_out_only_real_torch_defaults():
    """codegen leaves an argument out when torch_defaults (its reading of torch's signatures)
    says the catalog default is torch's: what torch builds must agree, or the generated model
    would silently differ. (The converse may fail harmlessly: RNN's nonlinearity is not in the
    signature torch_defaults finds, so codegen writes nonlinearity="tanh" out.)"""
    omitted = 0
    for type_, name, ours, same in _default_pairs():
        torch_ = torch_defaults(CATALOG[type_].torch_class)
        if name in torch_ and _equal(ours, torch_[name]):
            omitted += 1
            assert same, (type_, name)
    assert omitted > 100


def _equal(ours, theirs) -> bool:
    if callable(theirs):  # TransformerEncoderLayer(activation=F.relu): we store the name "relu"
        return getattr(theirs, "__name__", None) == ours
    if isinstance(ours, tuple | list) and isinstance(theirs, tuple | list):
        return tuple(ours) == tuple(theirs)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return type(ours) is type(theirs) and ours == theirs
    return ours == theirs


# --- catalog_json ------------------------------------------------------------------------------

_REQUIRED_TEXT = """
Linear Bilinear Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d MaxPool1d
MaxPool2d MaxPool3d AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d AdaptiveAvgPool2d
AdaptiveMaxPool1d AdaptiveMaxPool2d BatchNorm1d BatchNorm2d LayerNorm RMSNorm GroupNorm
InstanceNorm2d Dropout Dropout1d Dropout2d Embedding LSTM GRU RNN MultiheadAttention
TransformerEncoderLayer
TransformerDecoderLayer Flatten Unflatten Reshape Permute Upsample PixelShuffle Identity ReLU
LeakyReLU PReLU ELU GELU SiLU Mish Sigmoid Tanh Softplus Hardswish ReLU6 Hardtanh Hardsigmoid GLU
Softmax LogSoftmax Add Multiply
Concat Mean Sum MatMul Split Chunk Slice Select Squeeze Unsqueeze Transpose CrossEntropyLoss
NLLLoss MSELoss L1Loss SmoothL1Loss HuberLoss BCELoss BCEWithLogitsLoss KLDivLoss
CosineEmbeddingLoss SGD Adam AdamW RMSprop Adagrad NAdam StepLR MultiStepLR ExponentialLR
CosineAnnealingLR OneCycleLR LinearLR ReduceLROnPlateau SequentialLR CustomLayer CustomLoss Block
Dataset Training
"""
REQUIRED_TYPES = _REQUIRED_TEXT.split()


def test_catalog_json_is_json_and_complete():
    data = catalog_json()
    text = json.dumps(data)
    assert json.loads(text) == data
    assert data["format"] == "torchloom.graph/1"
    assert data["categories"] == list(CATEGORIES)
    nodes = data["nodes"]
    assert len(nodes) >= 85
    types = [n["type"] for n in nodes]
    assert len(types) == len(set(types))
    missing = sorted(set(REQUIRED_TYPES) - set(types))
    assert not missing
    for n in nodes:
        assert n["doc"].strip(), n["type"]
        assert n["category"] in CATEGORIES, n["type"]
        assert isinstance(n["inputs"], list) and isinstance(n["outputs"], list)
        for p in n["params"]:
            assert p["kind"] in (
                "int",
                "float",
                "bool",
                "choice",
                "str",
                "ints",
                "floats",
                "int_or_tuple",
                "code",
                "json",
            ), (n["type"], p)
            assert p["description"].strip(), (n["type"], p["name"])
            if p["kind"] == "choice":
                assert p["choices"], (n["type"], p["name"])
                if "default" in p:
                    assert p["default"] in p["choices"] or p.get("nullable")


def test_catalog_json_order_follows_categories():
    cats = [n["category"] for n in catalog_json()["nodes"]]
    assert cats == sorted(cats, key=CATEGORIES.index)


def test_catalog_defaults_pass_their_own_checks():
    """Every non-required default is accepted by its own Param.check (the UI starts from them)."""
    bad = []
    for type_, spec in CATALOG.items():
        for p in spec.params:
            if p.default is REQUIRED:
                continue
            _, problem = p.check(p.default)
            if problem:
                bad.append((type_, p.name, p.default, problem))
    assert not bad


def test_the_catalog_response_carries_the_servers_rules(tmp_path):
    """The editor keeps no copy of these (frontend/src/serverRules.ts): they come from here."""
    from server.engine.checkpoint import MONITORED
    from server.sockets import REPLAY_LIMIT
    from tests.server_app import AUTH, make_app

    body = make_app(tmp_path).test_client().get("/api/catalog", headers=AUTH).get_json()
    rules = body["rules"]
    assert rules["replay_limit"] == REPLAY_LIMIT
    assert [(m["name"], m["higher_is_better"]) for m in rules["monitored_metrics"]] == list(
        MONITORED
    )
    assert rules["ink_scale"] == {"digits": 16, "digits_images": 16}
    from sklearn.datasets import load_digits

    assert load_digits().data.max() == 16  # full ink in sklearn's digits
