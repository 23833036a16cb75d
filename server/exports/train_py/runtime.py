"""The part of the exported train.py that is the same for every run: copied into it verbatim
(inspect.getsource, function by function, in the order of the tuples at the end) by
server/exports/train_py/generate.py. It is ordinary code, so ruff lints it and the tests call it
directly (tests/test_train_py_runtime.py).

Rules for this file, because its text *is* the exported script:
- a function uses only the standard library, torch, the names the generated header defines (the
  slots below) and the other functions here: train.py imports nothing from torchloom;
- `Model()` in main() is renamed to the graph's class when copied (the only rewrite);
- RegressionMetrics comes from server/engine/regression_metrics.py, SegmentationMetrics from
  server/engine/segmentation_metrics.py, TokenMetrics from server/engine/token_metrics.py (and
  ClassesLast from graph_compiler/loss_layout.py where a loss uses it), copied in the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from ...engine.regression_metrics import RegressionMetrics
from ...engine.segmentation_metrics import SegmentationMetrics
from ...engine.token_metrics import TokenMetrics

# --- slots: what the generator writes per run (never copied from here) ----------------------
# Stand-ins with the same names, so that the functions below import, lint and can be tested
# (a test sets the ones it needs with monkeypatch).
HERE = Path(__file__).resolve().parent
DESCRIPTION = "Train the model from scratch."
EPOCHS = 1
BATCH_SIZE = 32
SEED = 0
VAL_SPLIT = 0.2
SHUFFLE = True
GRAD_CLIP = None
GRAD_ACCUMULATION = 1
TASK = "classification"
MODEL_INPUTS = ("x",)
FROZEN: list[str] = []
INITIAL_WEIGHTS = None
SCHEDULER_INTERVAL = None
SCHEDULER_MONITOR = None
CLASSIFICATION_TERMS: list[int] = []
REGRESSION_TERMS: list[int] = []
LANGUAGE_MODEL_TERMS: list[int] = []
PRECISION = "fp32"
THREADS = None
Model = None  # model.py's class


def load_data(args):
    """Generated: the run's data (x, y, validation or None)."""
    raise NotImplementedError("load_data is written into each exported train.py")


def make_losses():
    """Generated: the run's loss terms (label, module, weight, arguments)."""
    raise NotImplementedError("make_losses is written into each exported train.py")


def make_optimizer(params):
    """Generated: the run's optimizer over `params`."""
    raise NotImplementedError("make_optimizer is written into each exported train.py")


def make_scheduler(optimizer, epochs, steps_per_epoch):
    """Generated: the run's scheduler, or None."""
    raise NotImplementedError("make_scheduler is written into each exported train.py")


# --- the static part of train.py ------------------------------------------------------------


def split(x, y, validation, val_split, seed):
    """A seeded permutation; the last round(N * val_split) samples validate (at least one when
    val_split > 0, and at least one sample trains). An explicit validation set wins."""
    if validation is not None:
        return (x, y), validation
    n = x.shape[0]
    n_val = round(n * val_split)
    if val_split > 0:
        n_val = min(max(n_val, 1), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train, val = order[: n - n_val], order[n - n_val :]
    return (x[train], y[train]), (x[val], y[val])


def fit_standardizer(x):
    """(mean, std) of the training inputs, in float64 then stored as float32: per feature for
    (N, F), per feature over samples and steps for (N, T, F), per channel for images (N, C, ...).
    Integer inputs (token ids) and rank-1 inputs are left as they are (None). A zero std is 1."""
    if not x.is_floating_point() or x.dim() < 2 or x.shape[0] == 0:
        return None
    dims = {2: (0,), 3: (0, 1)}.get(x.dim(), (0, *range(2, x.dim())))
    xd = x.double()
    mean = xd.mean(dim=dims, keepdim=True)
    std = (xd - mean).pow(2).mean(dim=dims, keepdim=True).sqrt()
    std = torch.where(torch.isfinite(std) & (std > 1e-12), std, torch.ones_like(std))
    return mean.float(), std.float()


def fit_target_scaler(y):
    """Regression targets: per-column (mean, std) of the training y."""
    y2 = (y[:, None] if y.dim() == 1 else y.reshape(y.shape[0], -1)).double()
    mean = y2.mean(dim=0)
    std = (y2 - mean).pow(2).mean(dim=0).sqrt()
    std = torch.where(torch.isfinite(std) & (std > 1e-12), std, torch.ones_like(std))
    shape = () if y.dim() == 1 else tuple(y.shape[1:])
    return mean.float().reshape(shape), std.float().reshape(shape)


def scale(t, stats):
    if stats is None:
        return t
    mean, std = stats
    return (t - mean.to(t.dtype)) / std.to(t.dtype)


def forward(model, batch):
    out = model(*(batch[name] for name in MODEL_INPUTS))
    return out if isinstance(out, tuple) else (out,)


def compute_loss(losses, outputs, batch):
    """The weighted sum of the loss terms, and each term."""
    total, parts = None, {}
    for label, module, weight, arguments in losses:
        values = [outputs[ref] if kind == "output" else batch[ref] for kind, ref in arguments]
        value = module(*values)
        parts[label] = value
        weighted = value if weight == 1.0 else value * weight
        total = weighted if total is None else total + weighted
    return total, parts


def evaluate(model, losses, x, y, batch_size, device, precision, y_stats):
    """Validation: eval mode, no gradients; the mean loss, the accuracy of classifiers (per-pixel
    classifiers: pixel accuracy and mean IoU), the MAE / RMSE / R² of regressions (in the data's
    own units: the target scaling undone) and the token accuracy and perplexity of language
    models."""
    model.eval()
    total, count, correct = 0.0, 0, [0] * len(CLASSIFICATION_TERMS)
    dense = [None] * len(CLASSIFICATION_TERMS)  # SegmentationMetrics of per-pixel terms
    regressions = [RegressionMetrics(device) for _ in REGRESSION_TERMS]
    tokens = [TokenMetrics.for_loss(losses[term][1], device) for term in LANGUAGE_MODEL_TERMS]
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            rows = slice(start, start + batch_size)
            batch = {"x": x[rows].to(device), "y": y[rows].to(device)}
            with autocast(device, precision):
                outputs = forward(model, batch)
                loss, _ = compute_loss(losses, outputs, batch)
            n = batch["x"].shape[0]
            total += float(loss.double()) * n
            count += n
            for j, term in enumerate(CLASSIFICATION_TERMS):
                ref = next(r for kind, r in losses[term][3] if kind == "output")
                pred = outputs[ref]
                if pred.dim() == 2 and batch["y"].dim() == 1:
                    correct[j] += int((pred.argmax(dim=1) == batch["y"]).sum())
                elif SegmentationMetrics.applies(pred, batch["y"]):
                    dense[j] = dense[j] or SegmentationMetrics(pred.shape[1], device)
                    dense[j].update(pred, batch["y"])
            for j, term in enumerate(REGRESSION_TERMS):
                ref = next(r for kind, r in losses[term][3] if kind == "output")
                p, t = outputs[ref].float().double(), batch["y"].double()
                if p.shape != t.shape:
                    continue
                if y_stats is not None:
                    mean, std = (s.to(device).double().reshape(-1) for s in y_stats)
                    p, t = p * std + mean, t * std + mean
                regressions[j].update(p, t)
            for j, term in enumerate(LANGUAGE_MODEL_TERMS):
                ref = next(r for kind, r in losses[term][3] if kind == "output")
                tokens[j].update(outputs[ref], batch["y"])
    record = {"val_loss": total / max(count, 1)}
    for j, term in enumerate(CLASSIFICATION_TERMS):
        suffix = "" if j == 0 else f"/{losses[term][0]}"
        if dense[j] is not None:
            record.update({f"val_{name}{suffix}": v for name, v in dense[j].compute().items()})
        else:
            record[f"val_accuracy{suffix}"] = correct[j] / max(count, 1)
    for j, term in enumerate(REGRESSION_TERMS):
        suffix = "" if j == 0 else f"/{losses[term][0]}"
        figures = regressions[j].compute()  # mae, rmse, r2 ({} without samples)
        record.update({f"val_{name}{suffix}": v for name, v in figures.items()})
    for j, term in enumerate(LANGUAGE_MODEL_TERMS):
        suffix = "" if j == 0 else f"/{losses[term][0]}"
        figures = tokens[j].compute()  # accuracy, perplexity ({} without tokens)
        record.update({f"val_{name}{suffix}": v for name, v in figures.items()})
    return record


def autocast_dtype(precision, device):
    """(autocast dtype or None, use a GradScaler): fp16 needs CUDA (bf16 on the CPU instead),
    and falls back to fp16 + GradScaler where a GPU has no bf16."""
    if precision == "fp32":
        return None, False
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16, True
        return torch.bfloat16, False
    if device.type != "cuda":
        return torch.bfloat16, False
    return torch.float16, True


def autocast(device, precision):
    dtype, _ = autocast_dtype(precision, device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def setup_processes(requested_device):
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) this joins the process group:
    NCCL with one GPU per process, or gloo on the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and requested_device != "cpu"
    if world > 1:
        import torch.distributed as dist

        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
        device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    elif requested_device == "auto":
        device = torch.device("cuda" if cuda else "cpu")
    else:
        device = torch.device(requested_device)
    return rank, world, device


def mean_over_processes(value, world, device):
    """The step's loss averaged over the processes (each saw its share of the batch)."""
    if world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t[0]) / world


def save_checkpoint(folder, epoch, model, optimizer, scheduler, scaler):
    """Everything to continue training: the state_dicts of the model, optimizer, scheduler and
    loss scaler (torch.load(path, weights_only=True) reads it back)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"epoch-{epoch:04d}.pt"
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
    }
    torch.save(state, path)
    return path


# fmt: off
# (main keeps the hand-wrapped layout it has always had in the exported files, which stay
# byte-identical; ruff check still lints it)
def main(argv=None):
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=SEED, help="default: %(default)s")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help="CPU threads (torch.set_num_threads) when training on the CPU; default, the run's: "
        "%(default)s (None: torch's default). The run is reproduced with its own count only",
    )
    parser.add_argument(
        "--precision",
        default=PRECISION,
        choices=("fp32", "bf16", "fp16"),
        help="autocast precision (default, the run's: %(default)s)",
    )
    parser.add_argument(
        "--data", default=str(HERE / "data.npz"), help="the .npz data file, when the data is not "
        "a scikit-learn dataset (default: data.npz next to this script)"
    )
    parser.add_argument(
        "--out", default="trained_state_dict.pt", help="where the trained state_dict goes"
    )
    parser.add_argument(
        "--checkpoints", default="checkpoints", help="folder for the per-epoch checkpoints"
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=1, help="epochs between checkpoints (0: none)"
    )
    parser.add_argument("--step-log", help="also write every step's loss to this JSON-lines file")
    parser.add_argument(
        "--init-weights",
        default=str(HERE / INITIAL_WEIGHTS) if INITIAL_WEIGHTS else None,
        help="start from this state_dict (.pt) instead of the seeded initialization "
        "(default: the run's initial weights, if it had any)",
    )
    args = parser.parse_args(argv)
    rank, world, device = setup_processes(args.device)
    main_process = rank == 0
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)

    x, y, validation = load_data(args)
    (x_train, y_train), (x_val, y_val) = split(x, y, validation, VAL_SPLIT, args.seed)
    x_stats = fit_standardizer(x_train)
    x_train, x_val = scale(x_train, x_stats), scale(x_val, x_stats)
    y_stats = None
    if TASK == "regression" and y_train.is_floating_point():
        y_stats = fit_target_scaler(y_train)
        y_train, y_val = scale(y_train, y_stats), scale(y_val, y_stats)

    torch.manual_seed(args.seed)  # the initial weights
    model = Model()  # the generator writes model.py's class here
    for path in FROZEN:
        model.get_submodule(path).requires_grad_(False)
    if args.init_weights:  # warm start / fine-tuning: only tensors, never pickled code
        initial = torch.load(args.init_weights, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(initial, strict=False)
        if unexpected:
            raise SystemExit(f"{args.init_weights}: keys not in the model: {unexpected}")
        if missing and main_process:
            print(f"{args.init_weights}: {len(missing)} tensors keep their initial values")
    model.to(device)
    network = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        network = DistributedDataParallel(model, device_ids=ids)
    trainable = [p for p in model.parameters() if p.requires_grad]
    losses = [(label, module.to(device), w, a) for label, module, w, a in make_losses()]
    optimizer = make_optimizer(trainable)
    n_train = len(x_train)
    batches = math.ceil(n_train / args.batch_size)
    steps_per_epoch = math.ceil(batches / GRAD_ACCUMULATION)
    scheduler = make_scheduler(optimizer, args.epochs, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(args.precision, device)[1])
    order_generator = torch.Generator().manual_seed(args.seed)  # the epochs' sample order
    torch.manual_seed(args.seed)  # dropout and friends
    step_log = open(args.step_log, "w") if args.step_log and main_process else None  # noqa: SIM115
    if main_process:
        print(f"{n_train} training and {len(x_val)} validation samples, "
              f"{sum(p.numel() for p in model.parameters()):,} parameters, on {device}"
              + (f" ({torch.get_num_threads()} threads)" if device.type == "cpu" else "")
              + f", {args.precision}" + (f", {world} processes" if world > 1 else ""))

    step = 0
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n_train, generator=order_generator) if SHUFFLE else torch.arange(
            n_train
        )
        step_losses = []
        optimizer.zero_grad(set_to_none=True)
        for position, start in enumerate(range(0, n_train, args.batch_size), 1):
            idx = order[start : start + args.batch_size]
            if world > 1:  # this process's share of the batch
                idx = idx.tensor_split(world)[rank]
            batch = {"x": x_train[idx].to(device), "y": y_train[idx].to(device)}
            with autocast(device, args.precision):
                loss, _ = compute_loss(losses, forward(network, batch), batch)
            scaler.scale(loss / GRAD_ACCUMULATION).backward()
            if position % GRAD_ACCUMULATION == 0 or position == batches:
                if GRAD_CLIP:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(trainable, GRAD_CLIP)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if scheduler is not None and SCHEDULER_INTERVAL == "step":
                    scheduler.step()
            value = mean_over_processes(loss.item(), world, device)
            if not math.isfinite(value):
                raise SystemExit(f"non-finite loss at epoch {epoch} step {position}: {value}")
            step += 1
            step_losses.append(value)
            if step_log is not None:
                step_log.write(json.dumps({"epoch": epoch, "step": step, "loss": value}) + "\n")
        record = {"epoch": epoch, "train_loss": sum(step_losses) / len(step_losses)}
        if len(x_val):
            record.update(
                evaluate(
                    model,
                    losses,
                    x_val,
                    y_val,
                    max(args.batch_size, 256),
                    device,
                    args.precision,
                    y_stats,
                )
            )
        # the learning rate this epoch trained with, as the app reports it: read before the
        # epoch's scheduler step sets the next one
        record["lr"] = optimizer.param_groups[0]["lr"]
        if scheduler is not None and SCHEDULER_INTERVAL == "epoch":
            if type(scheduler).__name__ == "ReduceLROnPlateau":
                monitor = SCHEDULER_MONITOR or "val_loss"
                scheduler.step(record.get(monitor, record["train_loss"]))
            else:
                scheduler.step()
        record["seconds"] = round(time.perf_counter() - started, 3)
        if main_process:
            print(json.dumps(record), flush=True)
            if args.checkpoint_every and (
                epoch % args.checkpoint_every == 0 or epoch == args.epochs
            ):
                save_checkpoint(Path(args.checkpoints), epoch, model, optimizer, scheduler, scaler)
    if step_log is not None:
        step_log.close()

    if main_process:
        out = Path(args.out)
        torch.save(model.state_dict(), out)
        stats = {
            "normalizer": None if x_stats is None else {
                "mean": x_stats[0].tolist(), "std": x_stats[1].tolist()
            },
            "target_scaler": None if y_stats is None else {
                "mean": y_stats[0].tolist(), "std": y_stats[1].tolist()
            },
        }
        out.with_name(out.name + ".preprocess.json").write_text(json.dumps(stats) + "\n")
        print(f"saved the state_dict to {out} (normalization: {out.name}.preprocess.json)")
# fmt: on


def finish_processes():
    """After main() has returned: free what it left in reference cycles (a DistributedDataParallel
    wrapper freed at interpreter exit, after its process group, can abort the process with
    "terminate called without an active exception"), wait for every process, then leave the
    process group."""
    import gc

    import torch.distributed as dist

    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# The functions copied into train.py, in their order there: the data and scaling helpers come
# before the generated make_losses / make_optimizer / make_scheduler, the rest after them.
BEFORE_CONSTRUCTORS = (split, fit_standardizer, fit_target_scaler, scale)
AFTER_CONSTRUCTORS = (forward, compute_loss)
AFTER_METRICS = (
    evaluate,
    autocast_dtype,
    autocast,
    setup_processes,
    mean_over_processes,
    save_checkpoint,
    main,
    finish_processes,
)
