"""`torchloom train GRAPH`: train headless with a progress bar and a run folder.

The run folder holds metrics.jsonl (one line per epoch), events.jsonl (every event), the
checkpoints, model.safetensors, model.py, graph.json and preprocess.json. Ctrl-C stops after the
current step and leaves a resumable checkpoint (`--resume PATH`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from graph_compiler.cli import pipe_safe

from .events import Event


def add_train_command(sub) -> None:
    p = sub.add_parser("train", help="train a graph headless (progress bar, run folder)")
    p.add_argument("graph", metavar="GRAPH", help="graph document (.json)")
    p.add_argument("--epochs", type=int, help="override the Training node's epochs")
    p.add_argument("--batch-size", type=int, help="override the batch size")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--seed", type=int)
    p.add_argument("--compile", action="store_true", default=None, help="use torch.compile")
    p.add_argument(
        "--no-fast-path",
        dest="fast_path",
        action="store_false",
        default=None,
        help="stream batches through a DataLoader instead of indexing resident data",
    )
    p.add_argument(
        "--cuda-graphs",
        choices=("auto", "on", "off"),
        default="auto",
        help="capture the whole step in a CUDA graph where possible (default auto)",
    )
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<graph>-<run id>)")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint")
    p.add_argument(
        "--init-weights",
        metavar="FILE",
        help="start from these weights (.safetensors or .pt state_dict), e.g. from import-module",
    )
    p.add_argument(
        "--partial-weights",
        action="store_true",
        help="with --init-weights: load the tensors that fit, report the others",
    )
    p.add_argument(
        "--gpus",
        type=int,
        default=1,
        help="data-parallel processes (DDP through torchrun); one per GPU",
    )
    p.add_argument("--nnodes", type=int, default=1, help="machines (passed to torchrun)")
    p.add_argument("--node-rank", type=int, default=0, help="this machine's rank (torchrun)")
    p.add_argument("--master-addr", default="127.0.0.1", help="rank 0's address (torchrun)")
    p.add_argument("--master-port", type=int, default=29500, help="rank 0's port (torchrun)")
    p.add_argument(
        "--allow-custom-code",
        action="store_true",
        help="run CustomLayer/CustomLoss code (trusted graphs only)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=pipe_safe(cmd_train))


def _launch_distributed(args) -> int:
    """Re-run this command under torchrun with one process per GPU."""
    argv = [a for a in sys.argv[1:]]
    # drop --gpus N / --gpus=N; torchrun sets WORLD_SIZE for the children
    cleaned, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--gpus":
            skip = True
            continue
        if a.startswith("--gpus="):
            continue
        cleaned.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={args.gpus}"]
    if args.nnodes == 1:
        cmd.append("--standalone")
    else:
        cmd += [
            f"--nnodes={args.nnodes}",
            f"--node_rank={args.node_rank}",
            f"--master_addr={args.master_addr}",
            f"--master_port={args.master_port}",
        ]
    cmd += ["-m", "server.cli", *cleaned]
    return subprocess.call(cmd)


def cmd_train(args) -> int:
    if args.gpus > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return _launch_distributed(args)
    from .distributed import DistContext
    from .trainer import Trainer

    path = Path(args.graph)
    try:
        document = path.read_bytes()
    except OSError as exc:
        print(f"torchloom: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    dist = DistContext.from_env()
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "device": args.device,
        "precision": args.precision,
        "seed": args.seed,
        "compile": args.compile,
        "fast_path": args.fast_path,
    }
    if args.init_weights:
        overrides["init_weights"] = str(Path(args.init_weights).resolve())
        overrides["init_partial"] = args.partial_weights
    trainer = Trainer(
        document,
        overrides=overrides,
        resume=args.resume,
        allow_custom_code=args.allow_custom_code,
        base_dir=path.resolve().parent,
        cuda_graphs=args.cuda_graphs,
        dist=dist,
    )
    out = Path(args.out) if args.out else Path("runs") / f"{path.stem}-{trainer.run_id}"
    trainer.out_dir = out
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        writer = RunFolderWriter(out)
        trainer.events.subscribe(writer)
        trainer.events.subscribe(Progress(quiet=args.quiet))

    def on_interrupt(signum, frame):
        if trainer._stop.is_set():
            raise KeyboardInterrupt
        print("\nstopping after this step (Ctrl-C again to abort)…", file=sys.stderr)
        trainer.request_stop()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
        dist.close()
    ok = result.status in ("finished", "stopped")
    if dist.is_main:
        try:
            writer.close()  # the last buffered lines: a full disk can refuse them here too
        except OSError as exc:
            print(f"torchloom: the run folder {out} is incomplete: {exc}", file=sys.stderr)
            ok = False
        print(summary(result), file=sys.stderr if args.quiet else sys.stdout)
    return 0 if ok else 1


class RunFolderWriter:
    """Persists the stream: every event to events.jsonl, epochs to metrics.jsonl."""

    batched = True  # gets every event delivered in one wake-up as one list

    def __init__(self, out: Path):
        self.events: IO = open(out / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.metrics: IO = open(out / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.__name__ = "run folder"

    def __call__(self, events: list[Event]) -> None:
        self.events.write("".join(e.to_json() + "\n" for e in events))
        epochs = [e.data for e in events if e.type == "epoch"]
        if epochs:
            self.metrics.write("".join(json.dumps(d) + "\n" for d in epochs))
            self.metrics.flush()
        if any(e.type in ("epoch", "checkpoint", "finished", "failed", "stopped") for e in events):
            self.events.flush()

    def close(self) -> None:
        try:
            self.events.close()
        finally:
            self.metrics.close()


class Progress:
    """A tqdm bar over all steps, with loss, validation metric and samples/s."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar = None
        self.__name__ = "progress"
        self.started = time.perf_counter()

    def __call__(self, event: Event) -> None:
        d = event.data
        if event.type == "run_started":
            threads = f", {d['cpu_threads']} threads" if d.get("device") == "cpu" else ""
            print(
                f"run {event.run_id}: {d['device_name']} ({d['device_reason']}){threads}, "
                f"{d['precision']} ({d['precision_reason']}); step: {d['step_mode']}, "
                f"data: {d['data_mode']}; {d['train_samples']} train / {d['val_samples']} "
                f"validation samples",
                file=sys.stderr,
            )
            if not self.quiet:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=d["epochs"] * d["steps_per_epoch"],
                    unit="step",
                    dynamic_ncols=True,
                    file=sys.stderr,
                )
        elif event.type == "step" and self.bar is not None:
            self.bar.update(max(0, d["step"] - self.bar.n))
            self.bar.set_postfix(epoch=d["epoch"], loss=f"{d['loss']:.4f}", refresh=False)
        elif event.type == "epoch" and self.bar is not None:
            shown = {k: d[k] for k in ("val_loss", "val_accuracy", "val_miou", "val_r2") if k in d}
            self.bar.set_postfix(
                epoch=d["epoch"],
                loss=f"{d['train_loss']:.4f}",
                **{k: f"{v:.4f}" for k, v in shown.items()},
                sps=f"{d['samples_per_s']:.0f}",
            )
        elif event.type == "log":
            (self.bar.write if self.bar else print)(f"[{d['level']}] {d['message']}")
        elif event.type in ("finished", "failed", "stopped"):
            if self.bar is not None:
                self.bar.close()
            if event.type == "failed":
                print(f"run failed: {d['reason']}", file=sys.stderr)
            if event.type == "stopped":
                print(f"stopped; resume with --resume {d.get('checkpoint')}", file=sys.stderr)


def summary(result) -> str:
    cols = [
        ("epoch", "{:d}"),
        ("train_loss", "{:.4f}"),
        ("val_loss", "{:.4f}"),
        ("val_accuracy", "{:.4f}"),
        ("val_miou", "{:.4f}"),
        ("val_mae", "{:.4f}"),
        ("val_r2", "{:.4f}"),
        ("samples_per_s", "{:,.0f}"),
        ("epoch_time", "{:.2f}s"),
    ]
    present = [(k, f) for k, f in cols if any(k in h for h in result.history)]
    lines = [
        f"run {result.run_id}: {result.status}" + (f" — {result.reason}" if result.reason else "")
    ]
    if present:
        header = [k for k, _ in present]
        rows = [[f.format(h[k]) if k in h else "" for k, f in present] for h in result.history]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(header)]
        lines.append("  ".join(c.rjust(w) for c, w in zip(header, widths, strict=True)))
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    if result.out_dir:
        lines.append(f"run folder: {result.out_dir}")
    if result.checkpoint:
        lines.append(f"checkpoint: {result.checkpoint}")
    return "\n".join(lines)
