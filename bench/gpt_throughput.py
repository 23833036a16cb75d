"""GPT training throughput: the engine against ../shared/anchors/anchor_gpt.py, in one run.

The anchor (a hand-written nanoGPT-style loop) runs as a subprocess of this script, so both
figures come from the same machine at the same time; nothing of it is copied here. The engine
trains the same model built as a torchloom graph: token Embedding + PositionIds → position
Embedding, Dropout, L pre-norm causal blocks (LayerNorm → Linear 3D → Chunk → heads (Reshape,
Transpose) → causal ScaledDotProductAttention → heads merged → Linear D → Dropout → residual;
LayerNorm → Linear 4D → GELU → Linear D → Dropout → residual: the anchor's block from parts;
a TransformerEncoderLayer would add a dropout inside the MLP, and nn.MultiheadAttention works
sequence-first inside), a final LayerNorm, a Linear head tied to the token Embedding,
CrossEntropy over (B, T, V), AdamW(lr 1e-3, betas (0.9, 0.99), weight decay 0.1), gradient
clipping at 1.0. Both parameter counts are printed and must agree.

Data: random tokens like the anchor's, as a text file of 65 distinct characters (the char
tokenizer's vocabulary is then the anchor's 65): a file source cut into windows of T, kept
resident on the device by the engine's fast path and batched by index — the data path is one
index_select per batch, not the bottleneck (the anchor stacks B slices per step).

    .venv/bin/python bench/train_throughput.py --gpt --small --threads 1   # CPU: 2x4x128, T 64
    .venv/bin/python bench/train_throughput.py --gpt           # GPU: shakespeare_char size

Modes: anchor eager and compile (its own); engine "default" (Training defaults: fp32, whole-step
CUDA graph where possible) and "fastest" (CUDA: bf16 autocast + whole-step CUDA graph, and bf16
+ torch.compile; the best of them is reported; CPU: the default). Targets: CUDA fastest ≥ 1.0×
the anchor's best; CPU (--small) engine ≥ 0.95× the anchor's eager.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.engine.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
# where the anchors are found: beside the checkout (../shared/anchors), in it (shared/anchors,
# as a device machine gets them), or copied into .anchors/ (bench/gpu_check.sh)
ANCHOR_PLACES = (ROOT.parent / "shared" / "anchors", ROOT / "shared" / "anchors", ROOT / ".anchors")


def find_anchor(given: str | None) -> Path:
    places = [Path(given)] if given else [d / "anchor_gpt.py" for d in ANCHOR_PLACES]
    for path in places:
        if path.is_file():
            return path
    raise SystemExit(f"anchor_gpt.py not found in {', '.join(map(str, places))}; pass --anchor")


# (layers, heads, width, block, batch, vocab, dropout): the anchor's two sizes
SIZES = {
    "small": (2, 4, 128, 64, 16, 65, 0.0),
    "shakespeare_char": (6, 6, 384, 256, 64, 65, 0.2),
}


def block(heads: int, width: int, dropout: float, block_size: int) -> dict:
    """One pre-norm causal block, as the anchor's Block: attention from parts (one Linear to
    q, k and v, heads split off, ScaledDotProductAttention, heads merged, a Linear), which is
    the anchor's own arithmetic — nn.MultiheadAttention works sequence-first inside and copies
    between layouts (on the CPU its step measured ~15 % slower)."""
    t, hd = block_size, width // heads
    heads_of = [
        step
        for name, port in (("q", "out0"), ("k", "out1"), ("v", "out2"))
        for step in (
            (f"{name}_heads", "Reshape", {"shape": [t, heads, hd]}, [("qkv_split", port, "in")]),
            (f"{name}_t", "Transpose", {"dim0": 1, "dim1": 2}, [(f"{name}_heads", "out", "in")]),
        )
    ]
    layers = [
        ("ln1", "LayerNorm", {}, [("x", "out", "in")]),
        ("qkv", "Linear", {"out_features": 3 * width}, [("ln1", "out", "in")]),
        ("qkv_split", "Chunk", {"chunks": 3, "dim": 2}, [("qkv", "out", "in")]),
        *heads_of,
        (
            "attn",
            "ScaledDotProductAttention",
            {"is_causal": True, "dropout_p": dropout},
            [("q_t", "out", "query"), ("k_t", "out", "key"), ("v_t", "out", "value")],
        ),
        ("merge_t", "Transpose", {"dim0": 1, "dim1": 2}, [("attn", "out", "in")]),
        ("merge", "Reshape", {"shape": [t, width]}, [("merge_t", "out", "in")]),
        ("attn_proj", "Linear", {"out_features": width}, [("merge", "out", "in")]),
        ("drop1", "Dropout", {"p": dropout}, [("attn_proj", "out", "in")]),
        ("add1", "Add", {}, [("drop1", "out", "in"), ("x", "out", "in")]),
        ("ln2", "LayerNorm", {}, [("add1", "out", "in")]),
        ("fc", "Linear", {"out_features": 4 * width}, [("ln2", "out", "in")]),
        ("gelu", "GELU", {}, [("fc", "out", "in")]),
        ("proj", "Linear", {"out_features": width}, [("gelu", "out", "in")]),
        ("drop2", "Dropout", {"p": dropout}, [("proj", "out", "in")]),
        ("add2", "Add", {}, [("drop2", "out", "in"), ("add1", "out", "in")]),
        ("out", "Output", {}, [("add2", "out", "in")]),
    ]
    nodes = [{"id": "x", "type": "Input"}]
    edges = []
    for node_id, kind, params, inputs in layers:
        nodes.append({"id": node_id, "type": kind, "params": params})
        edges += [
            {"source": s, "source_port": sp, "target": node_id, "target_port": tp}
            for s, sp, tp in inputs
        ]
    return {"nodes": nodes, "edges": edges}


def gpt_graph(data_path: Path, size: str, epochs: int, **training) -> dict:
    """The anchor's GPT as a torchloom graph document, trained on the .npz at data_path."""
    layers, heads, width, block_size, batch, vocab, dropout = SIZES[size]
    nodes = [
        {
            "id": "data",
            "type": "Dataset",
            "params": {
                "source": "file",
                "path": str(data_path),
                "format": "text",
                "task": "language_model",
                "tokenizer": "char",
                "block_size": block_size,
            },
        },
        {
            "id": "tok",
            "type": "Embedding",
            "params": {"num_embeddings": vocab, "embedding_dim": width},
        },
        {"id": "pos_ids", "type": "PositionIds"},
        {
            "id": "pos",
            "type": "Embedding",
            "params": {"num_embeddings": block_size, "embedding_dim": width},
        },
        {"id": "embed", "type": "Add"},
        {"id": "drop", "type": "Dropout", "params": {"p": dropout}},
        {"id": "blocks", "type": "Block", "params": {"block": "GPTBlock", "repeat": layers}},
        {"id": "ln_f", "type": "LayerNorm"},
        {
            "id": "head",
            "type": "Linear",
            "params": {"out_features": vocab, "bias": False, "tie_weight": "tok"},
        },
        {"id": "loss", "type": "CrossEntropyLoss"},
        {
            "id": "opt",
            "type": "AdamW",
            "params": {"lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 0.1},
        },
        {
            "id": "train",
            "type": "Training",
            "params": {
                "epochs": epochs,
                "batch_size": batch,
                "val_split": 0.0,
                "checkpoint_every": 0,
                "grad_clip": 1.0,
                **training,
            },
        },
    ]
    chain = [
        ("data", "x", "tok", "in"),
        ("data", "x", "pos_ids", "in"),
        ("pos_ids", "out", "pos", "in"),
        ("tok", "out", "embed", "in"),
        ("pos", "out", "embed", "in"),
        ("embed", "out", "drop", "in"),
        ("drop", "out", "blocks", "x"),
        ("blocks", "out", "ln_f", "in"),
        ("ln_f", "out", "head", "in"),
        ("head", "out", "loss", "input"),
        ("data", "y", "loss", "target"),
        ("loss", "loss", "opt", "loss"),
    ]
    edges = [
        {"source": s, "source_port": sp, "target": t, "target_port": tp} for s, sp, t, tp in chain
    ]
    return {
        "format": "torchloom.graph/1",
        "name": f"GPT bench ({size})",
        "nodes": nodes,
        "edges": edges,
        "blocks": {"GPTBlock": block(heads, width, dropout, block_size)},
    }


def write_tokens(folder: Path, size: str, windows: int) -> Path:
    """Random tokens like the anchor's (uniform over the vocabulary) as a text file of
    `vocab` distinct characters: the char tokenizer's vocabulary is then exactly the
    anchor's, and the engine cuts it into `windows` windows of T (y: x shifted by one)."""
    _, _, _, block_size, _, vocab, _ = SIZES[size]
    alphabet = (string.ascii_letters + string.digits + " .,;:!?-'")[:vocab]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=windows * block_size + 1)
    path = folder / f"tokens-{size}.txt"
    path.write_text("".join(alphabet[i] for i in ids), encoding="utf-8")
    return path


def engine(data_path: Path, size: str, device: torch.device, steps: int, **training) -> dict:
    """Tokens/s of one engine run, over every epoch but the first (warm-up, graph capture)."""
    _, _, _, block_size, batch, _, _ = SIZES[size]
    windows = (len(data_path.read_text(encoding="utf-8")) - 1) // block_size
    epochs = 1 + max(1, -(-steps // (windows // batch)))
    trainer = Trainer(gpt_graph(data_path, size, epochs, device=str(device), **training))
    result = trainer.run()
    if result.status != "finished":
        raise SystemExit(f"engine run failed: {result.reason}")
    timed = result.history[1:]
    samples = sum(h["samples_per_s"] * h["epoch_time"] for h in timed)
    return {
        "tokens_per_s": samples / sum(h["epoch_time"] for h in timed) * block_size,
        "mode": trainer.step_mode,
        "params": sum(p.numel() for p in trainer.plan.model.parameters()),
        "final_loss": round(result.history[-1]["train_loss"], 4),
    }


def anchor(
    path: Path, size: str, device: torch.device, seconds: float, compile_too: bool
) -> list[dict]:
    """The anchor's JSON lines (eager, and compile unless told not to)."""
    cmd = [sys.executable, str(path), "--device", device.type, "--seconds", str(seconds)]
    cmd += ["--small"] if size == "small" else []
    cmd += [] if compile_too else ["--no-compile"]
    env = os.environ.copy()
    # the same CPU threads as this process (--threads): torch reads it at start-up
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def run(
    size: str,
    device: torch.device,
    seconds: float,
    repeats: int,
    compile_too: bool,
    steps: int | None = None,
    anchor_path: str | None = None,
) -> dict:
    """Anchor and engine turn about (median of each): a shared machine drifts."""
    import statistics

    cuda = device.type == "cuda"
    path = find_anchor(anchor_path)
    steps = steps or (600 if cuda else 40)
    folder = Path(tempfile.mkdtemp(prefix="torchloom-gptbench-"))
    _, _, _, _, batch, _, _ = SIZES[size]
    # one epoch ≈ `steps` steps: the first (warm-up, compile, capture) is not timed
    data = write_tokens(folder, size, windows=batch * steps)
    eager, compiled, plain, pairs = [], [], [], []
    params = {}
    for _ in range(repeats):
        for line in anchor(path, size, device, seconds, compile_too and not compiled):
            print(json.dumps(line), flush=True)
            (compiled if line["anchor"].endswith("compile") else eager).append(line["tokens_per_s"])
            params["anchor"] = line["params"]
        e = engine(data, size, device, steps)
        print(json.dumps({"engine": "default", **e}), flush=True)
        plain.append(e["tokens_per_s"])
        params["engine"] = e["params"]
        # each turn's engine/anchor: the two ran seconds apart, under much the same load
        pairs.append(plain[-1] / eager[-1])
    r = {
        "size": size,
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "params_anchor": params["anchor"],
        "params_engine": params["engine"],
        "anchor_eager": statistics.median(eager),
        "engine_default": statistics.median(plain),
    }
    if compiled:
        r["anchor_compile"] = max(compiled)
    fastest = {"default": r["engine_default"]}
    if cuda:
        for name, extra in (
            ("bf16 + CUDA graph", {"precision": "bf16"}),
            ("bf16 + compile", {"precision": "bf16", "compile": True}),
        ):
            e = engine(data, size, device, steps, **extra)
            print(json.dumps({"engine": name, **e}), flush=True)
            fastest[f"{name} ({e['mode']})"] = e["tokens_per_s"]
    r["engine_fastest_mode"], r["engine_fastest"] = max(fastest.items(), key=lambda kv: kv[1])
    r["anchor_best"] = max(r["anchor_eager"], r.get("anchor_compile", 0.0))
    r["fastest/anchor_best"] = r["engine_fastest"] / r["anchor_best"]
    r["default/anchor_eager"] = r["engine_default"] / r["anchor_eager"]
    r["paired default/anchor_eager"] = statistics.median(pairs)
    return r


def report(r: dict, markdown: bool) -> None:
    """The run's figures as one JSON line and a table."""
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}))
    if r["params_anchor"] != r["params_engine"]:
        print(
            f"WARNING: parameter counts differ: anchor {r['params_anchor']:,}, "
            f"engine {r['params_engine']:,}"
        )
    rows = [
        ("parameters (anchor / engine)", f"{r['params_anchor']:,} / {r['params_engine']:,}"),
        ("anchor eager", f"{r['anchor_eager']:,.0f}"),
        ("anchor compile", f"{r['anchor_compile']:,.0f}" if "anchor_compile" in r else "-"),
        ("engine default", f"{r['engine_default']:,.0f}"),
        (f"engine fastest: {r['engine_fastest_mode']}", f"{r['engine_fastest']:,.0f}"),
        ("engine default / anchor eager", f"{r['default/anchor_eager']:.2f}"),
        ("same, median of each turn's ratio", f"{r['paired default/anchor_eager']:.2f}"),
        ("engine fastest / anchor best", f"{r['fastest/anchor_best']:.2f}"),
    ]
    if markdown:
        print("| GPT tokens/s | value |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
    else:
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name.ljust(width)}  {value}")
    print(f"tokens/s on {r['device']}, size {r['size']}")
