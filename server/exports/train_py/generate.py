"""The exported train.py: a header, imports and constants written from the run's analyzed graph,
the generated constructors (train_py/sources.py) and, between them, the static functions copied
verbatim from train_py/runtime.py and server/engine/regression_metrics.py (inspect.getsource), so
that the code every export shares is ordinary, linted and tested source.

train.py imports nothing from torchloom: torch and numpy (and scikit-learn for the sklearn
built-in datasets). Every hyperparameter is written into it as a literal.
"""

from __future__ import annotations

import inspect
import json
import textwrap

from graph_compiler.analysis import Analysis
from graph_compiler.loss_layout import ClassesLast
from graph_compiler.render import value as render

from ...engine.regression_metrics import RegressionMetrics
from ...engine.segmentation_metrics import SegmentationMetrics
from ...engine.token_metrics import TokenMetrics
from ..artifacts import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, RunFiles, loss_infos
from ..run_facts import INITIAL_FILE, SKLEARN, dataset_params, recorded_threads
from . import runtime
from .sources import (
    call_source,
    data_loader_source,
    kwargs_source,
    safe_text,
    scheduler_source,
    string_literal,
)


def generate_train_py(
    files: RunFiles,
    a: Analysis,
    interface,
    class_name: str,
    has_npz: bool,
    has_initial: bool = False,
) -> str:
    """train.py's text: only what the run's graph decides is written here; the rest is
    runtime.py's code."""
    s = a.settings
    params = dataset_params(files.document)
    losses = loss_infos(a, interface)
    task = files.preprocess.get("task") or (a.data.task if a.data else "classification")
    frozen = _frozen(a)
    loss_lines, custom_classes = _loss_entries(a, losses)
    opt = a.result(next(n for n, sp in a.top.scope.specs.items() if sp.role == "optimizer"))
    optimizer_src = call_source(
        f"torch.optim.{opt.spec.type}", ["params", *kwargs_source(opt.spec, opt.params)]
    )
    optimizer_body = "return " + textwrap.indent(optimizer_src, "    ").lstrip()
    final, interval, monitor, scheduler_src = _final_scheduler(a)
    scheduler_body = "return " + textwrap.indent(scheduler_src, "    ").lstrip()
    # a language model's class-id terms report token accuracy and perplexity instead
    language_model_terms = [
        i
        for i, t in enumerate(losses)
        if t.type in CLASSIFICATION_LOSSES
        and ("data", "y") in t.sources
        and task == "language_model"
    ]
    classification_terms = [
        i
        for i, t in enumerate(losses)
        if t.type in CLASSIFICATION_LOSSES
        and ("data", "y") in t.sources
        and i not in language_model_terms
    ]
    regression_terms = [
        i
        for i, t in enumerate(losses)
        if t.type in REGRESSION_LOSSES and ("data", "y") in t.sources
    ]
    load_src, data_desc = data_loader_source(params, has_npz)
    precision = s.get("precision", "fp32")
    header = _docstring(
        files,
        class_name,
        needs="torch, numpy and scikit-learn"
        if params.get("source") in SKLEARN
        else "torch and numpy",
        data_desc=data_desc,
        task=task,
        has_initial=has_initial,
        loss_desc="; ".join(
            f"{safe_text(t.label)} ({t.type}, weight {t.weight:g})" for t in losses
        ),
        optimizer=opt.spec.type,
        sched_desc=f"{a.result(final).spec.type}, stepped every {interval}" if final else "none",
        precision=precision,
    )
    description = string_literal(
        f"Train {files.name} ({class_name}) from scratch with the run's data, split, "
        "normalization, loss, optimizer and schedule."
    )
    if any(t.class_dim == -1 for t in losses):  # scores with their classes last
        custom_classes.append(
            "# copied from torchloom (graph_compiler/loss_layout.py)\n"
            + inspect.getsource(ClassesLast).rstrip()
        )
    custom_src = ("\n\n" + "\n\n".join(custom_classes)) if custom_classes else ""
    # the app's own MAE / RMSE / R² and pixel accuracy / mean IoU code, so that train.py
    # reports the run's figures
    regression_metrics_source = (
        "# copied from torchloom (server/engine/regression_metrics.py): the app computes its\n"
        "# validation MAE, RMSE and R² with this same class\n"
        + inspect.getsource(RegressionMetrics).rstrip()
        + "\n\n\n# copied from torchloom (server/engine/segmentation_metrics.py): the app's pixel\n"
        "# accuracy and mean IoU of per-pixel classifiers\n"
        + inspect.getsource(SegmentationMetrics).rstrip()
        + "\n\n\n# copied from torchloom (server/engine/token_metrics.py): a language model's "
        "token\n# accuracy and perplexity, as the app computes them\n"
        + inspect.getsource(TokenMetrics).rstrip()
    )
    # only what this script uses, so that it passes ruff as it is
    optional_imports = (
        "import torch.nn.functional as F\n" if any(t.type == "CustomLoss" for t in losses) else ""
    )
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
LANGUAGE_MODEL_TERMS = {render(language_model_terms)}  # token accuracy and perplexity reported
PRECISION = {json.dumps(precision)}  # the run's precision (--precision)
# The run's CPU thread count (--threads). On the CPU another count splits float sums
# differently: the losses drift apart within a few steps and the final metric differs.
THREADS = {render(recorded_threads(files))}
{custom_src}
{load_src}

{_copied(runtime.BEFORE_CONSTRUCTORS)}


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


{_copied(runtime.AFTER_CONSTRUCTORS)}


{regression_metrics_source}


{_main_renamed(_copied(runtime.AFTER_METRICS), class_name)}


if __name__ == "__main__":
    main()
    finish_processes()
'''
    return text


def _loss_entries(a: Analysis, losses) -> tuple[list[str], list[str]]:
    """make_losses()'s list entries, and the classes of the custom losses they build."""
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
                    f"Custom loss {safe_text(term.label)}.",
                )
            )
            module = f"{name}()"
        else:
            module = call_source(f"nn.{r.spec.type}", kwargs_source(r.spec, r.params))
            if term.class_dim == -1:  # (B, T, V) scores: classes moved to dim 1 for torch
                module = f"ClassesLast({module})"
        items = [json.dumps(term.label), module, render(term.weight), render(term.sources)]
        entry = "(\n" + "".join(textwrap.indent(f"{item},", "    ") + "\n" for item in items)
        loss_lines.append(textwrap.indent(entry + "),", "        "))
    return loss_lines, custom_classes


def _final_scheduler(a: Analysis) -> tuple[str | None, str | None, str | None, str]:
    """(the scheduler the optimizer steps with (no other scheduler consumes it) or None, its
    interval, its monitored metric, its constructor's source or "None")."""
    scope = a.top.scope
    final = [
        n
        for n, sp in scope.specs.items()
        if sp.role == "scheduler" and not any(e.source == n for e in scope.edges)
    ]
    if not final:
        return None, None, None, "None"
    top = a.result(final[0])
    interval = top.params["interval"]
    return final[0], interval, top.params.get("monitor"), scheduler_source(a, final[0], interval, 0)


def _docstring(
    files: RunFiles,
    class_name: str,
    *,
    needs: str,
    data_desc: str,
    task: str,
    has_initial: bool,
    loss_desc: str,
    optimizer: str,
    sched_desc: str,
    precision: str,
) -> str:
    """train.py's docstring: what it needs, and each step of the run it reproduces."""
    title = safe_text(files.name)
    fields = [
        ("data", safe_text(data_desc)),
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
        ("optimizer", f"{optimizer}, with the run's parameters (make_optimizer below)"),
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
    return (
        f'"""Train "{title}" from scratch, as torchloom run {files.run_id} trained it.\n\n'
        f"Generated by torchloom; standalone: needs {needs}, nothing from torchloom.\n"
        f"{described}\n\n"
        "    python train.py --help\n"
        "    python train.py --epochs 1\n"
        "    torchrun --nproc_per_node 2 train.py\n"
        '"""'
    )


def _frozen(a: Analysis) -> tuple[str, ...]:
    from graph_compiler import compile_graph

    return compile_graph(a).frozen


def _copied(functions) -> str:
    """The functions' source as it stands in runtime.py, two blank lines apart."""
    return "\n\n\n".join(inspect.getsource(f).rstrip() for f in functions)


def _main_renamed(source: str, class_name: str) -> str:
    """runtime.main() builds `Model()`: the exported one builds the graph's class."""
    placeholder = "    model = Model()  # the generator writes model.py's class here\n"
    if source.count(placeholder) != 1:  # pragma: no cover - runtime.py's main was edited
        raise AssertionError("runtime.main() must build the model with `model = Model()`")
    return source.replace(placeholder, f"    model = {class_name}()\n")
