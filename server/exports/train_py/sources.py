"""The graph-dependent pieces of the exported train.py, as Python source: the loss, optimizer and
scheduler constructors' calls (their keyword arguments rendered from the run's analyzed graph)
and load_data. The scheduler sizes that follow the run's length (T_max, total_steps) are written
as expressions of the epochs and steps per epoch, so that `--epochs` keeps them consistent.
"""

from __future__ import annotations

import json
import textwrap

from graph_compiler.analysis import Analysis
from graph_compiler.catalog.spec import InferContext
from graph_compiler.datasets import BUILTINS, FILE
from graph_compiler.infer import torch_kwargs
from graph_compiler.render import value as render

from ...errors import ApiError
from ..run_facts import SKLEARN


def kwargs_source(spec, params: dict, replace: dict[str, str] | None = None) -> list[str]:
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


def scheduler_source(a: Analysis, node_id: str, interval: str, offset: int) -> str:
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
            scheduler_source(a, first, interval, offset),
            scheduler_source(a, then, interval, offset + milestone),
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
    return call_source(cls, ["optimizer", *kwargs_source(r.spec, params, replace)])


def call_source(name: str, args: list[str], width: int = 72) -> str:
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


def data_loader_source(params: dict, has_npz: bool) -> tuple[str, str]:
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
        safe_text(
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


def string_literal(text: str, width: int = 72) -> str:
    """A Python string literal of any text, split over lines when long."""
    parts = textwrap.wrap(
        text, width, drop_whitespace=False, replace_whitespace=False, break_long_words=True
    )
    if len(parts) <= 1:
        return json.dumps(text)
    return "(\n" + "".join(f"    {json.dumps(p)}\n" for p in parts) + ")"


def safe_text(text: str) -> str:
    """User text (names, labels) for a docstring: one line, no quotes or backslashes."""
    cleaned = "".join(c if c.isprintable() and c not in '"\\' else " " for c in str(text))
    return " ".join(cleaned.split())[:400] or "model"
