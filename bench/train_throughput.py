"""Training throughput: the engine against hand-written PyTorch loops, measured in one run.

Same models and data as ../shared/anchors (MNIST-shaped synthetic data, MLP 784-512-256-10 and
CNN conv32-pool-conv64-pool-fc128-fc10, Adam lr 1e-3, batch 64 and 512):

  (a) seed     hand-written: per-item Dataset + DataLoader(shuffle=True) + .to(device) per batch
  (b) resident hand-written: data on the device, randperm + index per batch, eager
  (c) engine   default mode (Training node defaults: fp32, fast path, CUDA graphs where possible)
  (d) fastest  the engine's fastest mode (bf16 + whole-step CUDA graph on CUDA; default on CPU)
  (e) engine default with a metrics consumer attached (events written to a file) vs without

Prints one JSON line per measurement and a table of ratios: (c)/(b), (d)/(a), (d)/(b) and the
consumer cost (e). Targets: (c)/(b) ≥ 0.95 on CPU and ≥ 1.0 on CUDA; on CUDA (d)/(a) ≥ 5 and
(d) within 10 % of the hand-built whole-step CUDA graph (anchor_cudagraph.py, same run);
(e) costs ≤ 3 %.

    .venv/bin/python bench/train_throughput.py                 # CPU here: small n
    .venv/bin/python bench/train_throughput.py --device cuda --n 60000

With --gpt: tokens/s of a GPT against ../shared/anchors/anchor_gpt.py (bench/gpt_throughput.py
says how), the anchor run as a subprocess in the same run. On a GPU machine, in one command:

    .venv/bin/python bench/train_throughput.py --gpt --markdown           # shakespeare_char
    .venv/bin/python bench/train_throughput.py --gpt --small --markdown   # CPU-sized (here)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.engine.cli import RunFolderWriter
from server.engine.trainer import Trainer


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def graph(arch: str, n: int, batch: int, epochs: int, **training) -> dict:
    """The same network as a torchloom graph document."""
    layers = {
        "mlp": [
            ("Flatten", {}),
            ("Linear", {"out_features": 512}),
            ("ReLU", {}),
            ("Linear", {"out_features": 256}),
            ("ReLU", {}),
            ("Linear", {"out_features": 10}),
        ],
        "cnn": [
            ("Conv2d", {"out_channels": 32, "padding": 1}),
            ("ReLU", {}),
            ("MaxPool2d", {"kernel_size": 2}),
            ("Conv2d", {"out_channels": 64, "padding": 1}),
            ("ReLU", {}),
            ("MaxPool2d", {"kernel_size": 2}),
            ("Flatten", {}),
            ("Linear", {"out_features": 128}),
            ("ReLU", {}),
            ("Linear", {"out_features": 10}),
        ],
    }[arch]
    nodes = [
        {
            "id": "data",
            "type": "Dataset",
            "params": {
                "source": "random_images",
                "samples": n,
                "image_shape": [1, 28, 28],
                "num_classes": 10,
            },
        }
    ]
    edges = []
    prev, port = "data", "x"
    for i, (t, p) in enumerate(layers):
        nodes.append({"id": f"n{i}", "type": t, "params": p})
        edges.append({"source": prev, "source_port": port, "target": f"n{i}", "target_port": "in"})
        prev, port = f"n{i}", "out"
    nodes += [
        {"id": "loss", "type": "CrossEntropyLoss"},
        {"id": "opt", "type": "Adam", "params": {"lr": 1e-3}},
        {
            "id": "train",
            "type": "Training",
            "params": {
                "epochs": epochs,
                "batch_size": batch,
                "val_split": 0.0,
                "checkpoint_every": 0,
                **training,
            },
        },
    ]
    edges += [
        {"source": prev, "source_port": "out", "target": "loss", "target_port": "input"},
        {"source": "data", "source_port": "y", "target": "loss", "target_port": "target"},
        {"source": "loss", "source_port": "loss", "target": "opt", "target_port": "loss"},
    ]
    return {"format": "torchloom.graph/1", "name": f"{arch} bench", "nodes": nodes, "edges": edges}


class PerItem(Dataset):  # the seed's style
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def hand_written(kind: str, make, x, y, dev, batch: int, seconds: float) -> float:
    torch.manual_seed(0)
    model = make().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if kind == "seed":
        loader = DataLoader(PerItem(x, y), batch_size=batch, shuffle=True)

        def batches():
            while True:
                for xb, yb in loader:
                    yield xb.to(dev), yb.to(dev)
    else:
        xd, yd = x.to(dev), y.to(dev)

        def batches():
            while True:
                perm = torch.randperm(len(xd), device=dev)
                for i in range(0, len(xd) - batch + 1, batch):
                    idx = perm[i : i + batch]
                    yield xd[idx], yd[idx]

    it = batches()

    def step():
        xb, yb = next(it)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    sync(dev)
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            step()
        n += 10
        sync(dev)
        if time.perf_counter() - start > seconds:
            break
    return n * batch / (time.perf_counter() - start)


def engine(
    arch: str,
    n: int,
    batch: int,
    dev: torch.device,
    *,
    consumer: bool = False,
    fastest: bool = False,
) -> tuple[float, str]:
    training = {"device": str(dev)}
    if fastest and dev.type == "cuda":
        training["precision"] = "bf16"
    # time at least ~3000 steps after the first epoch (warm-up, graph capture), like the
    # hand-written loops' timed windows
    steps = -(-n // batch)
    min_steps = 3000 if dev.type == "cuda" else 200
    epochs = 1 + max(1, -(-min_steps // steps))
    doc = graph(arch, n, batch, epochs=epochs, **training)
    trainer = Trainer(doc)
    if consumer:  # the CLI's run-folder writer: every event to events.jsonl
        folder = Path(tempfile.mkdtemp(prefix="torchloom-bench-"))
        writer = RunFolderWriter(folder)
        trainer.events.subscribe(writer)
    result = trainer.run()
    if consumer:
        writer.close()
    if result.status != "finished":
        raise SystemExit(f"engine run failed: {result.reason}")
    mode = getattr(trainer, "step_mode", "?")
    # all epochs but the first, which includes warm-up (and CUDA graph capture)
    timed = result.history[1:]
    samples = sum(h["samples_per_s"] * h["epoch_time"] for h in timed)
    return samples / sum(h["epoch_time"] for h in timed), mode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=None, help="samples (default 60000 CUDA, 6144 CPU)")
    ap.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="timed window of each loop (default 3; --gpt: the anchor's, 6 on CUDA, 10 on CPU)",
    )
    ap.add_argument("--only", default="", help="run configurations containing this text")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument(
        "--repeats", type=int, default=3, help="turns of (b), (c) and (e), median of each"
    )
    ap.add_argument("--gpt", action="store_true", help="the GPT against anchor_gpt.py instead")
    ap.add_argument("--small", action="store_true", help="--gpt: the anchor's CPU-sized model")
    ap.add_argument("--no-compile", action="store_true", help="--gpt: skip the anchor's compile")
    ap.add_argument("--anchor", help="--gpt: path of anchor_gpt.py (default: ../shared/anchors)")
    ap.add_argument(
        "--threads",
        type=int,
        help="--gpt: CPU threads of both (one is steadier on a shared, oversubscribed machine)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.gpt:
        from bench.gpt_throughput import report, run

        size = "small" if args.small else "shakespeare_char"
        # compiling on the CPU takes minutes and is not what the CPU target compares
        compile_too = dev.type == "cuda" and not args.no_compile
        # a CPU step takes ~0.2 s: the anchor's window must hold more than a few steps
        seconds = args.seconds or (6.0 if dev.type == "cuda" else 10.0)
        report(
            run(size, dev, seconds, args.repeats, compile_too, anchor_path=args.anchor),
            args.markdown,
        )
        return
    args.seconds = args.seconds or 3.0
    # on the CPU a multiple of 512: the hand-written loops drop the last partial batch, the
    # engine trains on it (a second batch shape, which the CPU kernels handle more slowly)
    n = args.n or (60000 if dev.type == "cuda" else 6144)
    torch.manual_seed(0)
    x = torch.randn(n, 1, 28, 28)
    y = torch.randint(0, 10, (n,))
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(
        json.dumps(
            {"torch": torch.__version__, "device": name, "threads": torch.get_num_threads(), "n": n}
        ),
        flush=True,
    )
    rows = []
    for arch, make in (("mlp", mlp), ("cnn", cnn)):
        for batch in (64, 512):
            cfg = f"{arch}/bs{batch}"
            if args.only and args.only not in cfg:
                continue
            r = {"cfg": cfg}
            r["a_seed"] = hand_written("seed", make, x, y, dev, batch, args.seconds)
            # (b), (c) and (e) take turns, the median of each: one measurement differs from
            # the next by several per cent, and a machine that slows down under sustained load
            # (a shared VM) would otherwise favour whichever loop runs first
            resident, plain, consumed = [], [], []
            for _ in range(args.repeats):
                resident.append(hand_written("resident", make, x, y, dev, batch, args.seconds))
                value, r["c_mode"] = engine(arch, n, batch, dev)
                plain.append(value)
                consumed.append(engine(arch, n, batch, dev, consumer=True)[0])
            r["b_resident"] = statistics.median(resident)
            r["c_engine"] = statistics.median(plain)
            r["e_consumer"] = statistics.median(consumed)
            r["d_fastest"], r["d_mode"] = engine(arch, n, batch, dev, fastest=True)
            r["c/b"] = r["c_engine"] / r["b_resident"]
            r["d/a"] = r["d_fastest"] / r["a_seed"]
            r["d/b"] = r["d_fastest"] / r["b_resident"]
            r["e_cost"] = 1 - r["e_consumer"] / r["c_engine"]
            print(
                json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}),
                flush=True,
            )
            rows.append(r)
    header = [
        "cfg",
        "(a) seed",
        "(b) resident",
        "(c) engine",
        "(d) fastest",
        "(c)/(b)",
        "(d)/(a)",
        "(d)/(b)",
        "(e) cost",
        "(d) mode",
    ]
    table = [
        [
            r["cfg"],
            f"{r['a_seed']:,.0f}",
            f"{r['b_resident']:,.0f}",
            f"{r['c_engine']:,.0f}",
            f"{r['d_fastest']:,.0f}",
            f"{r['c/b']:.2f}",
            f"{r['d/a']:.2f}",
            f"{r['d/b']:.2f}",
            f"{100 * r['e_cost']:+.1f} %",
            r["d_mode"],
        ]
        for r in rows
    ]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for row in table:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print(f"samples/s on {name}, n={n}; (e) cost = 1 - with consumer / without")


if __name__ == "__main__":
    main()
