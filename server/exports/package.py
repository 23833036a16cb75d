"""code.zip: the run's model.py (the exact bytes it trained), graph.json, preprocess.json, a
README, a standalone train.py and, for generated or uploaded data, the data itself (data.npz).

train.py imports nothing from torchloom: torch and numpy (and scikit-learn for the sklearn
built-in datasets). Every hyperparameter is written into it as a literal, read from the run's
analyzed graph; the scheduler sizes that follow the run's length (T_max, total_steps) are written
as expressions of the epochs and steps per epoch, so `--epochs` keeps them consistent.
"""

from __future__ import annotations

import inspect
import io
import json
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import torch

from graph_compiler.analysis import Analysis
from graph_compiler.catalog.spec import InferContext
from graph_compiler.datasets import BUILTINS, FILE
from graph_compiler.infer import torch_kwargs
from graph_compiler.render import value as render

from ..engine.regression_metrics import RegressionMetrics
from ..engine.trainer import ENVIRONMENT_FILE
from ..errors import ApiError
from .artifacts import (
    CLASSIFICATION_LOSSES,
    REGRESSION_LOSSES,
    RunFiles,
    load_run_data,
    loss_infos,
)

RUN_INITIAL = "initial.safetensors"  # a warm-started run's initial weights, in its folder
INITIAL_FILE = "initial_state_dict.pt"  # ... and in code.zip
DATA_LIMIT = 50 * 2**20  # data.npz is included below this size (uncompressed bytes)

SKLEARN = {  # built-in source → (loader, x reshape, task)
    "digits": ("load_digits", None, "classification"),
    "digits_images": ("load_digits", (-1, 1, 8, 8), "classification"),
    "iris": ("load_iris", None, "classification"),
    "wine": ("load_wine", None, "classification"),
    "breast_cancer": ("load_breast_cancer", None, "classification"),
    "diabetes": ("load_diabetes", None, "regression"),
}


def build_zip(files: RunFiles, analysis: Analysis, interface, class_name: str, datasets_root: Path):
    """The archive's bytes."""
    params = _dataset_params(files.document)
    source = params.get("source")
    data_note, data_arrays = "", None
    if source not in SKLEARN:
        loaded = load_run_data(files.document, datasets_root)
        arrays = {"x": loaded.x.numpy(), "y": loaded.y.numpy()}
        if loaded.val is not None:
            arrays["x_val"], arrays["y_val"] = loaded.val[0].numpy(), loaded.val[1].numpy()
        size = sum(a.nbytes for a in arrays.values())
        if size <= DATA_LIMIT:
            data_arrays = arrays
        else:
            data_note = (
                f"The data ({size / 2**20:.0f} MB) is larger than the {DATA_LIMIT // 2**20} MB "
                "that an export includes: save it as data.npz (see train.py's load_data)."
            )
    initial = _initial_weights(files)
    train_py = generate_train_py(
        files, analysis, interface, class_name, data_arrays is not None, initial is not None
    )
    readme = generate_readme(files, analysis, interface, class_name, data_arrays, data_note)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.py", files.source.encode("utf-8"))
        archive.writestr("graph.json", (files.folder / "graph.json").read_bytes())
        archive.writestr("preprocess.json", (files.folder / "preprocess.json").read_bytes())
        archive.writestr("train.py", train_py)
        archive.writestr("README.md", readme)
        if initial is not None:
            archive.writestr(INITIAL_FILE, initial)
        if data_arrays is not None:
            npz = io.BytesIO()
            np.savez(npz, **data_arrays)
            archive.writestr("data.npz", npz.getvalue())
    return buffer.getvalue()


def _initial_weights(files: RunFiles) -> bytes | None:
    """The weights a warm-started run began from, as a torch.save'd state_dict (train.py needs
    only torch to read it), or None."""
    path = files.folder / RUN_INITIAL
    if not path.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ApiError(
            409, "bad_weights", f"the run's initial weights cannot be read: {exc}"
        ) from None
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _dataset_params(document: dict) -> dict:
    node = next((n for n in document.get("nodes", []) if n.get("type") == "Dataset"), None)
    return dict((node or {}).get("params") or {})


# --- train.py ---------------------------------------------------------------------------------


def _kwargs_source(spec, params: dict, replace: dict[str, str] | None = None) -> list[str]:
    replace = replace or {}
    out = []
    kwargs = torch_kwargs(spec, params)
    for p in spec.params:
        if p.name in replace:
            out.append(f"{p.name}={replace[p.name]}")
        elif p.name in kwargs and p.torch_arg:
            out.append(f"{p.name}={render(params[p.name], as_tensor=p.as_tensor)}")
    for name, v in spec.fixed_args.items():
        out.append(f"{name}={render(v)}")
    return out


def _scheduler_source(a: Analysis, node_id: str, interval: str, offset: int) -> str:
    """A scheduler constructor as graph_compiler.plan._scheduler builds it; the sizes inferred
    from the run's length become expressions of `epochs` and `steps_per_epoch`."""
    scope = a.top.scope
    r = a.result(node_id)
    params = dict(r.params)
    cls = f"lr_scheduler.{r.spec.type}"
    if r.spec.type == "SequentialLR":
        first = scope.incoming[node_id]["first"][0].source
        then = scope.incoming[node_id]["then"][0].source
        milestone = int(params["milestone"])
        children = [
            _scheduler_source(a, first, interval, offset),
            _scheduler_source(a, then, interval, offset + milestone),
        ]
        inner = ",\n".join(textwrap.indent(c, "        ") for c in children)
        return f"{cls}(\n    optimizer,\n    [\n{inner},\n    ],\n    milestones=[{milestone}],\n)"
    replace = {}
    for p in r.spec.params:
        if p.infer is None or p.name in r.node.params:
            continue
        expr = _inferred_expression(p.name, interval, offset)
        replace[p.name] = expr
        _check_expression(a, p, expr, interval, offset)
    return _call(cls, ["optimizer", *_kwargs_source(r.spec, params, replace)])


def _call(name: str, args: list[str], width: int = 72) -> str:
    """`name(a, b)` on one line when short, else one argument per line."""
    one_line = f"{name}({', '.join(args)})"
    if len(one_line) <= width and "\n" not in one_line:
        return one_line
    return f"{name}(\n" + "".join(textwrap.indent(f"{arg},", "    ") + "\n" for arg in args) + ")"


def _inferred_expression(name: str, interval: str, offset: int) -> str:
    run = "epochs * steps_per_epoch" if name == "total_steps" or interval == "step" else "epochs"
    if name not in ("T_max", "total_steps"):
        raise ApiError(422, "export_unsupported", f"cannot write the inferred scheduler {name}")
    return f"max(1, {run} - {offset})" if offset else f"max(1, {run})"


def _check_expression(a: Analysis, p, expr: str, interval: str, offset: int) -> None:
    """The expression must give what the compiler infers, for a couple of run lengths."""
    for epochs, per_epoch in ((a.settings["epochs"], 7), (3, 11)):
        settings = {
            **a.settings,
            "epochs": epochs,
            "steps_per_epoch": per_epoch,
            "interval": interval,
            "offset": offset,
        }
        expected = p.infer(InferContext({}, settings))
        got = eval(expr, {"max": max}, {"epochs": epochs, "steps_per_epoch": per_epoch})
        if expected != got:  # pragma: no cover - guards the mirror of the catalog's rules
            raise ApiError(500, "export_bug", f"{p.name}: {expr} gives {got}, not {expected}")


def _data_loader_source(params: dict, has_npz: bool) -> tuple[str, str]:
    """(load_data function source, the one-line description of the data)."""
    source = params.get("source")
    if source in SKLEARN:
        loader, reshape, task = SKLEARN[source]
        y_line = (
            "y = torch.from_numpy(np.asarray(bunch.target, dtype=np.float32)[:, None])"
            if task == "regression"
            else "y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))"
        )
        shape = f".reshape{reshape}" if reshape else ""
        y_kind = "float32 (N, 1) targets" if task == "regression" else "int64 class ids"
        body = f'''
def load_data(args):
    """scikit-learn's {source} dataset ({loader}), as torchloom reads it: x float32, y
    {y_kind}. Returns (x, y, None): the validation split is drawn below."""
    from sklearn.datasets import {loader}

    bunch = {loader}()
    x = torch.from_numpy(np.asarray(bunch.data, dtype=np.float32){shape})
    {y_line}
    return x, y, None
'''
        return body, f"sklearn.datasets.{loader}()"
    if source == FILE:
        origin = "an uploaded data file, read into arrays by torchloom's server"
    else:
        described = BUILTINS[source].description if source in BUILTINS else source
        knobs = {
            k: params[k]
            for k in ("samples", "noise", "data_seed", "num_classes", "seq_len", "image_shape")
            if k in params
        }
        settings = ", ".join(f"{k}={v}" for k, v in knobs.items()) or "default parameters"
        origin = f"torchloom's {source} generator ({described}; {settings})"
    missing = (
        "data.npz comes with this export"
        if has_npz
        else "the data was too large to include: save it yourself as data.npz"
    )
    doc = textwrap.fill(
        _safe_text(
            f"The run's data: {origin}. This script does not regenerate it: the arrays the run "
            f"trained on are in data.npz ({missing}): x, y and, when the data came with its own "
            "validation set, x_val and y_val. Returns (x, y, validation or None)."
        ),
        88,
        initial_indent="    ",
        subsequent_indent="    ",
    ).lstrip()
    body = f'''
def load_data(args):
    """{doc}"""
    path = Path(args.data)
    if not path.is_file():
        raise SystemExit(
            f"{{path}} not found: put the run's data there as an .npz file with arrays x and y "
            "(x_val and y_val for an explicit validation set), or pass --data PATH"
        )
    with np.load(path) as data:
        x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
        validation = None
        if "x_val" in data.files:
            validation = (torch.from_numpy(data["x_val"]), torch.from_numpy(data["y_val"]))
    return x, y, validation
'''
    return body, origin


def recorded_threads(files: RunFiles) -> int | None:
    """The CPU thread count the run trained with (None for a run from before it was kept)."""
    try:
        environment = json.loads((files.folder / ENVIRONMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    threads = environment.get("cpu_threads") if isinstance(environment, dict) else None
    return threads if isinstance(threads, int) and threads >= 1 else None


def generate_train_py(
    files: RunFiles,
    a: Analysis,
    interface,
    class_name: str,
    has_npz: bool,
    has_initial: bool = False,
) -> str:
    s = a.settings
    scope = a.top.scope
    params = _dataset_params(files.document)
    losses = loss_infos(a, interface)
    task = files.preprocess.get("task") or (a.data.task if a.data else "classification")
    frozen = _frozen(a)

    loss_lines, custom_classes = [], []
    for i, term in enumerate(losses):
        r = a.result(term.node_id)
        if term.type == "CustomLoss":
            from graph_compiler.custom import custom_class_source

            name = f"CustomLoss{i}"
            custom_classes.append(
                custom_class_source(
                    name,
                    {"code": r.params["code"], "parameters": ()},
                    ["input", "target"],
                    f"Custom loss {_safe_text(term.label)}.",
                )
            )
            module = f"{name}()"
        else:
            module = _call(f"nn.{r.spec.type}", _kwargs_source(r.spec, r.params))
        items = [json.dumps(term.label), module, render(term.weight), render(term.sources)]
        entry = "(\n" + "".join(textwrap.indent(f"{item},", "    ") + "\n" for item in items)
        loss_lines.append(textwrap.indent(entry + "),", "        "))

    opt_id = next(n for n, sp in scope.specs.items() if sp.role == "optimizer")
    opt = a.result(opt_id)
    optimizer_src = _call(
        f"torch.optim.{opt.spec.type}", ["params", *_kwargs_source(opt.spec, opt.params)]
    )
    optimizer_body = "return " + textwrap.indent(optimizer_src, "    ").lstrip()

    final = [
        n
        for n, sp in scope.specs.items()
        if sp.role == "scheduler" and not any(e.source == n for e in scope.edges)
    ]
    interval = monitor = None
    scheduler_src = "None"
    if final:
        top = a.result(final[0])
        interval = top.params["interval"]
        monitor = top.params.get("monitor")
        scheduler_src = _scheduler_source(a, final[0], interval, 0)
    scheduler_body = "return " + textwrap.indent(scheduler_src, "    ").lstrip()

    classification_terms = [
        i
        for i, t in enumerate(losses)
        if t.type in CLASSIFICATION_LOSSES and ("data", "y") in t.sources
    ]
    regression_terms = [
        i
        for i, t in enumerate(losses)
        if t.type in REGRESSION_LOSSES and ("data", "y") in t.sources
    ]
    load_src, data_desc = _data_loader_source(params, has_npz)
    precision = s.get("precision", "fp32")
    loss_desc = "; ".join(f"{_safe_text(t.label)} ({t.type}, weight {t.weight:g})" for t in losses)
    sched_desc = f"{a.result(final[0]).spec.type}, stepped every {interval}" if final else "none"
    title = _safe_text(files.name)
    description = _string_literal(
        f"Train {files.name} ({class_name}) from scratch with the run's data, split, "
        "normalization, loss, optimizer and schedule."
    )
    needs = (
        "torch, numpy and scikit-learn" if params.get("source") in SKLEARN else "torch and numpy"
    )
    fields = [
        ("data", _safe_text(data_desc)),
        (
            "split",
            "a seeded permutation (torch.Generator().manual_seed(SEED)); the last "
            "round(N * VAL_SPLIT) samples validate, unless the data brings its own",
        ),
        (
            "scaling",
            "inputs standardized with statistics of the training split only"
            + ("; regression targets too" if task == "regression" else ""),
        ),
        (
            "model",
            f"{class_name} from model.py, initialized after torch.manual_seed(SEED)"
            + (
                f", then loaded with the run's initial weights ({INITIAL_FILE})"
                if has_initial
                else ""
            ),
        ),
        ("loss", loss_desc),
        ("optimizer", f"{opt.spec.type}, with the run's parameters (make_optimizer below)"),
        ("schedule", sched_desc),
        (
            "loop",
            "zero_grad, forward, loss, backward, (clip), step; validation in eval mode under "
            "torch.no_grad after every epoch; a checkpoint (state_dicts) every epoch and the "
            "trained state_dict at the end",
        ),
        (
            "precision",
            f"{precision} like the run (--precision): bf16/fp16 under torch.autocast, fp16 "
            "with a GradScaler (CUDA; on the CPU fp16 becomes bf16, as in the run)",
        ),
        (
            "processes",
            "one; under torchrun (torchrun --nproc_per_node N train.py) DistributedDataParallel: "
            "each batch split across the processes, rank 0 prints and saves",
        ),
    ]
    described = "\n".join(
        textwrap.fill(text, 96, initial_indent=f"  {name:<11}", subsequent_indent=" " * 13)
        for name, text in fields
    )
    header = (
        f'"""Train "{title}" from scratch, as torchloom run {files.run_id} trained it.\n\n'
        f"Generated by torchloom; standalone: needs {needs}, nothing from torchloom.\n"
        f"{described}\n\n"
        "    python train.py --help\n"
        "    python train.py --epochs 1\n"
        "    torchrun --nproc_per_node 2 train.py\n"
        '"""'
    )
    custom_src = ("\n\n" + "\n\n".join(custom_classes)) if custom_classes else ""
    # the app's own MAE / RMSE / R² code, so that train.py reports the run's figures
    regression_metrics_source = (
        "# copied from torchloom (server/engine/regression_metrics.py): the app computes its\n"
        "# validation MAE, RMSE and R² with this same class\n"
        + inspect.getsource(RegressionMetrics).rstrip()
    )
    # only what this script uses, so that it passes ruff as it is
    optional_imports = "import torch.nn.functional as F\n" if custom_classes else ""
    scheduler_import = "from torch.optim import lr_scheduler\n" if final else ""
    text = f'''{header}

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
{optional_imports}from torch import nn
{scheduler_import}
from model import {class_name}

HERE = Path(__file__).resolve().parent
DESCRIPTION = {description}

# The run's settings (--epochs, --batch-size and --seed override the first three).
EPOCHS = {s["epochs"]}
BATCH_SIZE = {s["batch_size"]}
SEED = {s["seed"]}
VAL_SPLIT = {render(float(s["val_split"]))}
SHUFFLE = {render(bool(s["shuffle"]))}
GRAD_CLIP = {render(s["grad_clip"])}  # max gradient norm; None: no clipping
GRAD_ACCUMULATION = {s["grad_accumulation"]}
TASK = {json.dumps(task)}
MODEL_INPUTS = {render(tuple(interface.inputs))}  # what {class_name}.forward takes
FROZEN = {render(list(frozen))}  # submodules the run kept fixed (trainable: false)
INITIAL_WEIGHTS = {render(INITIAL_FILE if has_initial else None)}  # the run started from these
SCHEDULER_INTERVAL = {render(interval)}  # when scheduler.step() is called: "epoch" or "step"
SCHEDULER_MONITOR = {render(monitor)}  # ReduceLROnPlateau's metric
CLASSIFICATION_TERMS = {render(classification_terms)}  # loss terms whose accuracy is reported
REGRESSION_TERMS = {render(regression_terms)}  # loss terms with MAE / RMSE / R² reported
PRECISION = {json.dumps(precision)}  # the run's precision (--precision)
# The run's CPU thread count (--threads). On the CPU another count splits float sums
# differently: the losses drift apart within a few steps and the final metric differs.
THREADS = {render(recorded_threads(files))}
{custom_src}
{load_src}

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
    dims = {{2: (0,), 3: (0, 1)}}.get(x.dim(), (0, *range(2, x.dim())))
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


def make_losses():
    """(label, module, weight, arguments); an argument is ("output", i): the model's i-th
    output, or ("data", "x" | "y"): the batch's inputs or targets."""
    return [
{chr(10).join(loss_lines)}
    ]


def make_optimizer(params):
    {optimizer_body}


def make_scheduler(optimizer, epochs, steps_per_epoch):
    {scheduler_body}


def forward(model, batch):
    out = model(*(batch[name] for name in MODEL_INPUTS))
    return out if isinstance(out, tuple) else (out,)


def compute_loss(losses, outputs, batch):
    """The weighted sum of the loss terms, and each term."""
    total, parts = None, {{}}
    for label, module, weight, arguments in losses:
        values = [outputs[ref] if kind == "output" else batch[ref] for kind, ref in arguments]
        value = module(*values)
        parts[label] = value
        weighted = value if weight == 1.0 else value * weight
        total = weighted if total is None else total + weighted
    return total, parts


{regression_metrics_source}


def evaluate(model, losses, x, y, batch_size, device, precision, y_stats):
    """Validation: eval mode, no gradients; the mean loss, the accuracy of classifiers and the
    MAE / RMSE / R² of regressions (in the data's own units: the target scaling undone)."""
    model.eval()
    total, count, correct = 0.0, 0, [0] * len(CLASSIFICATION_TERMS)
    regressions = [RegressionMetrics(device) for _ in REGRESSION_TERMS]
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            rows = slice(start, start + batch_size)
            batch = {{"x": x[rows].to(device), "y": y[rows].to(device)}}
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
            for j, term in enumerate(REGRESSION_TERMS):
                ref = next(r for kind, r in losses[term][3] if kind == "output")
                p, t = outputs[ref].float().double(), batch["y"].double()
                if p.shape != t.shape:
                    continue
                if y_stats is not None:
                    mean, std = (s.to(device).double().reshape(-1) for s in y_stats)
                    p, t = p * std + mean, t * std + mean
                regressions[j].update(p, t)
    record = {{"val_loss": total / max(count, 1)}}
    for j, term in enumerate(CLASSIFICATION_TERMS):
        key = "val_accuracy" if j == 0 else f"val_accuracy/{{losses[term][0]}}"
        record[key] = correct[j] / max(count, 1)
    for j, term in enumerate(REGRESSION_TERMS):
        suffix = "" if j == 0 else f"/{{losses[term][0]}}"
        figures = regressions[j].compute()  # mae, rmse, r2 ({{}} without samples)
        record.update({{f"val_{{name}}{{suffix}}": v for name, v in figures.items()}})
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
    path = folder / f"epoch-{{epoch:04d}}.pt"
    state = {{
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
    }}
    torch.save(state, path)
    return path


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
    model = {class_name}()
    for path in FROZEN:
        model.get_submodule(path).requires_grad_(False)
    if args.init_weights:  # warm start / fine-tuning: only tensors, never pickled code
        initial = torch.load(args.init_weights, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(initial, strict=False)
        if unexpected:
            raise SystemExit(f"{{args.init_weights}}: keys not in the model: {{unexpected}}")
        if missing and main_process:
            print(f"{{args.init_weights}}: {{len(missing)}} tensors keep their initial values")
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
        print(f"{{n_train}} training and {{len(x_val)}} validation samples, "
              f"{{sum(p.numel() for p in model.parameters()):,}} parameters, on {{device}}"
              + (f" ({{torch.get_num_threads()}} threads)" if device.type == "cpu" else "")
              + f", {{args.precision}}" + (f", {{world}} processes" if world > 1 else ""))

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
            batch = {{"x": x_train[idx].to(device), "y": y_train[idx].to(device)}}
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
                raise SystemExit(f"non-finite loss at epoch {{epoch}} step {{position}}: {{value}}")
            step += 1
            step_losses.append(value)
            if step_log is not None:
                step_log.write(json.dumps({{"epoch": epoch, "step": step, "loss": value}}) + "\\n")
        record = {{"epoch": epoch, "train_loss": sum(step_losses) / len(step_losses)}}
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
        stats = {{
            "normalizer": None if x_stats is None else {{
                "mean": x_stats[0].tolist(), "std": x_stats[1].tolist()
            }},
            "target_scaler": None if y_stats is None else {{
                "mean": y_stats[0].tolist(), "std": y_stats[1].tolist()
            }},
        }}
        out.with_name(out.name + ".preprocess.json").write_text(json.dumps(stats) + "\\n")
        print(f"saved the state_dict to {{out}} (normalization: {{out.name}}.preprocess.json)")


def finish_processes():
    """After main() has returned (its DistributedDataParallel wrapper is gone): wait for every
    process, then leave the process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
    finish_processes()
'''
    return text


def _string_literal(text: str, width: int = 72) -> str:
    """A Python string literal of any text, split over lines when long."""
    parts = textwrap.wrap(
        text, width, drop_whitespace=False, replace_whitespace=False, break_long_words=True
    )
    if len(parts) <= 1:
        return json.dumps(text)
    return "(\n" + "".join(f"    {json.dumps(p)}\n" for p in parts) + ")"


def _safe_text(text: str) -> str:
    """User text (names, labels) for a docstring: one line, no quotes or backslashes."""
    cleaned = "".join(c if c.isprintable() and c not in '"\\' else " " for c in str(text))
    return " ".join(cleaned.split())[:400] or "model"


def _frozen(a: Analysis) -> tuple[str, ...]:
    from graph_compiler import compile_graph

    return compile_graph(a).frozen


# --- README.md ---------------------------------------------------------------------------------


def generate_readme(
    files: RunFiles,
    a: Analysis,
    interface,
    class_name: str,
    data_arrays: dict | None,
    data_note: str,
) -> str:
    pre = files.preprocess
    norm = pre.get("normalizer") or {"kind": "none"}
    task = pre.get("task") or "classification"
    x_shape = list(a.data.x_shape)
    x_dtype = "torch.int64" if a.data.x_dtype == "int64" else "torch.float32"
    example_shape = ", ".join(str(d) for d in [1, *x_shape])
    lines = [
        f"# {files.name}",
        "",
        str(files.document.get("description") or "").strip(),
        "",
        f"Exported by torchloom from run `{files.run_id}` ({files.status}; weights from "
        f"{'the final model.safetensors' if files.weights_kind == 'safetensors' else 'its latest checkpoint'}).",  # noqa: E501
        "",
        "## Files",
        "",
        f"- `model.py`: the PyTorch module `{class_name}`, exactly the code the run trained.",
        "- `graph.json`: the graph document as it ran (overrides applied).",
        "- `preprocess.json`: the input normalization (`normalizer`: mean and std of the "
        "training split), the regression target scaling (`target_scaler`), `class_names`, "
        "`task`.",
        "- `train.py`: trains the model from scratch the way the run did "
        "(`python train.py --help`).",
    ]
    if (files.folder / RUN_INITIAL).is_file():
        lines.append(
            f"- `{INITIAL_FILE}`: the weights the run started from (uploaded into the project); "
            "train.py loads them after the seeded initialization."
        )
    if data_arrays is not None:
        names = ", ".join(f"`{k}` {list(v.shape)} {v.dtype}" for k, v in data_arrays.items())
        lines.append(f"- `data.npz`: the run's data ({names}).")
    elif data_note:
        lines.append(f"- {data_note}")
    lines += [
        "",
        "The weights are downloaded separately from the run's export menu: `model.safetensors`",
        "(GET /api/runs/<run>/export/model.safetensors) or `state_dict.pt` (a plain",
        "`torch.save` of the state_dict); the ONNX model is `model.onnx`.",
        "",
        "## Inference",
        "",
        f"The model takes `{', '.join(interface.inputs)}` of shape `(batch, "
        f"{', '.join(str(d) for d in x_shape)})` ({x_dtype}), "
        + (
            "standardized with the training statistics: `(x - mean) / std`, the arrays in "
            "`preprocess.json` (shaped to broadcast against a batch)."
            if norm.get("kind") != "none"
            else "as they are (no normalization)."
        ),
        "",
        "```python",
        "import json",
        "",
        "import torch",
        "from safetensors.torch import load_file  # or: torch.load('state_dict.pt', "
        "weights_only=True)",
        "",
        f"from model import {class_name}",
        "",
        'pre = json.load(open("preprocess.json"))',
        f"model = {class_name}()",
        'model.load_state_dict(load_file("model.safetensors"))',
        "model.eval()",
        "",
        f"x = torch.zeros({example_shape}, dtype={x_dtype})  # your raw input, batch first",
    ]
    if norm.get("kind") != "none":
        lines += [
            'mean = torch.tensor(pre["normalizer"]["mean"])',
            'std = torch.tensor(pre["normalizer"]["std"])',
            "x = (x - mean) / std",
        ]
    lines += [
        "with torch.no_grad():",
        f"    out = model({'x' if interface.inputs == ('x',) else '...'})",
    ]
    if len(interface.outputs) > 1:
        lines.append(f"# out is a tuple of {len(interface.outputs)} outputs")
    if task == "classification":
        lines += [
            "probabilities = torch.softmax(out if not isinstance(out, tuple) else out[0], dim=1)",
            'label = pre["class_names"][int(probabilities[0].argmax())]',
        ]
    elif pre.get("target_scaler"):
        lines += [
            "# the model predicts standardized targets: undo the scaling",
            'ts = pre["target_scaler"]',
            'y = (out if not isinstance(out, tuple) else out[0]) * torch.tensor(ts["std"]) '
            '+ torch.tensor(ts["mean"])',
        ]
    lines += [
        "```",
        "",
        "## Training again",
        "",
        "```",
        "pip install torch numpy" + (" scikit-learn" if _uses_sklearn(files) else ""),
        "python train.py --epochs 1",
        "```",
        "",
        "train.py rebuilds the data, the seeded split, the standardization, the loss, the "
        "optimizer and the schedule with the run's parameters, and saves the trained "
        "state_dict (and its normalization statistics) at the end.",
        "",
    ]
    threads = recorded_threads(files)
    if threads is not None:
        lines += [
            f"On the CPU it trains with the run's {threads} thread{'s' if threads > 1 else ''} "
            "(`--threads` changes that): with another thread count, float sums round "
            "differently and the losses drift away from the run's within a few steps.",
            "",
        ]
    return "\n".join(lines)


def _uses_sklearn(files: RunFiles) -> bool:
    return _dataset_params(files.document).get("source") in SKLEARN
