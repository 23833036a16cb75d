"""model.onnx: torch.export with a dynamic batch dimension, then the dynamo ONNX exporter;
checked with onnx.checker (full_check) and compared with torch on validation samples in
onnxruntime, at the full sample batch and at batch 1. The file and its report are cached in the
run folder (exports/model.onnx, exports/model.onnx.json) until the run's weights change."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ApiError
from ..storage.files import contained
from .artifacts import RunModel
from .onnx_axes import rename_dynamic_axes
from .onnx_optimize import optimize_keeping_batch_norm

MAX_SAMPLES = 64
# what write_onnx produces; a cached model.onnx of another format is exported again
# (3: dynamic axis named `batch`, onnx_axes.py; 2: eval batch norms kept as BatchNormalization,
# onnx_optimize.py; before: folded into convs)
EXPORT_FORMAT = 3
TOLERANCE = 1e-4
_EXPORT_LOCK = threading.Lock()  # torch.export patches global state: one export at a time


def onnx_paths(folder: Path) -> tuple[Path, Path]:
    exports = contained(folder, "exports")
    return contained(exports, "model.onnx"), contained(exports, "model.onnx.json")


def cached_report(rm: RunModel) -> dict | None:
    """The cached report for these weights: a success (with model.onnx there) or a failure."""
    model_path, report_path = onnx_paths(rm.files.folder)
    if not report_path.is_file():
        return None
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("fingerprint") != rm.files.fingerprint:
        return None
    if report.get("format") != EXPORT_FORMAT:
        return None
    if "error" not in report and not model_path.is_file():
        return None
    return report


def _write_report(path: Path, report: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)


def export_onnx(rm: RunModel, datasets_root: Path) -> tuple[Path, dict]:
    """(path of model.onnx, its report); exported on first use, then served from the cache."""
    model_path, report_path = onnx_paths(rm.files.folder)
    with _EXPORT_LOCK:
        report = cached_report(rm)
        if report is not None:
            if "error" in report:  # the same weights failed before: no second attempt
                raise ApiError(**report["error"])
            return model_path, report
        model_path.parent.mkdir(parents=True, exist_ok=True)
        samples, source = sample_inputs(rm, datasets_root)
        fresh = _fresh_model(rm)
        input_names = list(rm.interface.inputs)
        output_names = _output_names(rm)
        tmp = model_path.with_name(f".model.onnx.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            _export(rm, fresh, samples, input_names, output_names, tmp)
            report = _check_and_compare(tmp, fresh, samples, input_names, output_names)
            os.replace(tmp, model_path)
        except ApiError as exc:
            if exc.status == 422:  # a property of the model and these weights: remember it
                error = {
                    "status": exc.status,
                    "code": exc.code,
                    "message": exc.message,
                    "details": exc.details,
                }
                _write_report(report_path, {**_cache_key(rm), "error": error})
            raise
        finally:
            tmp.unlink(missing_ok=True)
        report = {
            **report,
            "sample_source": source,
            "input_names": input_names,
            "output_names": output_names,
            "dynamic_batch": True,
            **_cache_key(rm),
            "torch": torch.__version__,
        }
        _write_report(report_path, report)
        return model_path, report


def _cache_key(rm: RunModel) -> dict:
    return {"fingerprint": rm.files.fingerprint, "format": EXPORT_FORMAT}


def public_report(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("fingerprint", "format")}


def sample_inputs(rm: RunModel, datasets_root: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Up to 64 validation samples, normalized as in training; random ones if the data cannot be
    read any more (the report says which)."""
    try:
        x, y = rm.validation(datasets_root)
        source = "validation"
        if len(x) == 0:
            raise ApiError(409, "no_validation", "the run has no validation samples")
    except ApiError:
        x, y, source = _random_inputs(rm), None, "random"
    x, y = x[:MAX_SAMPLES], None if y is None else y[:MAX_SAMPLES]
    if len(x) == 1:  # the example batch must not be 1, or torch.export specializes it
        x = torch.cat([x, x])
        y = None if y is None else torch.cat([y, y])
    batch = {"x": rm.normalizer().apply(x)}
    if "y" in rm.interface.inputs:
        if y is None:
            raise ApiError(
                409, "data_unavailable", "the model reads the targets y and the data is gone"
            )
        scaler = rm.target_scaler()
        batch["y"] = scaler.apply(y) if scaler is not None and y.is_floating_point() else y
    return {name: batch[name] for name in rm.interface.inputs}, source


def _random_inputs(rm: RunModel) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if rm.x_dtype == torch.int64:
        return torch.zeros((8, *rm.x_shape), dtype=torch.int64)
    return torch.randn((8, *rm.x_shape), generator=g)


def _fresh_model(rm: RunModel) -> torch.nn.Module:
    """A private copy: torch.export swaps parameters while it traces, and the cached model may be
    serving predictions at the same time."""
    model = getattr(rm.module, rm.class_name)()
    model.load_state_dict(rm.state)
    return model.eval()


def _output_names(rm: RunModel) -> list[str]:
    names: list[str] = []
    for node_id, port in rm.interface.outputs:
        base = node_id if port == "out" else f"{node_id}_{port}"
        name = re.sub(r"[^A-Za-z0-9_]", "_", base) or "output"
        while name in names or name in rm.interface.inputs:
            name += "_"
        names.append(name)
    return names


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc)).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return line[:400]


class _Wrapped(torch.nn.Module):
    """Holds the model one level down: a top-level submodule named like a GraphModule attribute
    (`code`, `graph`, ...) breaks the exporter's decomposition step."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args):
        return self.model(*args)


def _needs_wrapping(model: torch.nn.Module) -> bool:
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    names |= {n.split(".")[0] for n, _ in model.named_buffers()}
    names |= {n for n, _ in model.named_children()}
    return any(hasattr(torch.fx.GraphModule, n) for n in names)


class OnnxExportError(Exception):
    """torch.export (`stage` "trace": `errors` has the non-strict then the strict attempt's) or
    the ONNX conversion (`stage` "convert") failed."""

    def __init__(self, stage: str, errors: list[Exception]):
        super().__init__(f"{stage}: {_first_line(errors[0])}")
        self.stage, self.errors = stage, errors


def write_onnx(
    model: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    path: Path,
) -> None:
    """The export every model.onnx goes through (also the importers' tests): torch.export with a
    dynamic batch (non-strict, then strict), then the dynamo ONNX exporter, weights inline,
    eval-mode batch norms kept as BatchNormalization ops (not folded into the convolutions), the
    dynamic axis named `batch` (onnx_axes.py)."""
    batch = torch.export.Dim("batch", min=1)
    dynamic: tuple = tuple({0: batch} for _ in args)
    target = model
    if _needs_wrapping(model):
        target, dynamic = _Wrapped(model), (dynamic,)
    program = None
    errors = []
    for strict in (False, True):
        try:
            program = torch.export.export(target, args, dynamic_shapes=dynamic, strict=strict)
            break
        except Exception as exc:
            errors.append(exc)
    if program is None:
        raise OnnxExportError("trace", errors)
    try:
        exported = torch.onnx.export(
            program,
            args,
            dynamo=True,
            input_names=input_names,
            output_names=output_names,
            optimize=False,  # the same clean-up follows, batch norms kept (onnx_optimize.py)
            verbose=False,
        )
        try:
            optimize_keeping_batch_norm(exported.model)
        except Exception:  # an onnxscript whose passes moved: torch's own, batch norms folded
            exported.optimize()
        exported.save(str(path), external_data=False)
    except Exception as exc:
        raise OnnxExportError("convert", [exc]) from None
    try:  # `batch` rather than torch's symbol (s77) on the dynamic axis, onnx_axes.py
        import onnx

        proto = onnx.load(str(path))
        rename_dynamic_axes(proto)
        onnx.save(proto, str(path))
    except Exception as exc:
        raise OnnxExportError("convert", [exc]) from None


def _export(rm, model, samples, input_names, output_names, path: Path) -> None:
    args = tuple(samples[name] for name in input_names)
    try:
        write_onnx(model, args, input_names, output_names, path)
    except OnnxExportError as exc:
        if exc.stage == "trace":
            raise _not_traceable(rm, model, args, exc.errors[0]) from None
        raise ApiError(
            422,
            "onnx_export_failed",
            f"the model cannot be converted to ONNX: {_first_line(exc.errors[0])}",
        ) from None


def _not_traceable(rm: RunModel, model, args, error: Exception) -> ApiError:
    """Name the custom layer(s) that stop torch.export: each top-level CustomLayer is exported on
    its own with the inputs it receives in an eager forward."""
    from graph_compiler import compile_graph

    scope = rm.analysis.top.scope
    custom = [n for n, s in scope.specs.items() if s.type == "CustomLayer"]
    culprits: list[dict[str, str]] = []
    eager_error: Exception | None = None  # the model fails outside any tracer, too
    if custom:
        attrs = compile_graph(rm.analysis).attributes
        captured: dict[str, tuple] = {}
        hooks = []
        for node_id in custom:
            sub = model.get_submodule(attrs[node_id])

            def grab(_module, inputs, node_id=node_id):
                captured.setdefault(node_id, tuple(inputs))

            hooks.append(sub.register_forward_pre_hook(grab))
        try:
            with torch.no_grad():
                model(*args)
        except Exception as exc:  # reported below when no single layer is to blame
            eager_error = exc
        finally:
            for h in hooks:
                h.remove()
        for node_id in custom:
            if node_id not in captured:
                continue
            sub = model.get_submodule(attrs[node_id])
            try:
                torch.export.export(sub, captured[node_id], strict=False)
            except Exception as exc:
                label = scope.nodes[node_id].display
                culprits.append({"node": node_id, "label": label, "error": _first_line(exc)})
    if culprits:
        names = ", ".join(f'"{c["label"]}" ({c["node"]})' for c in culprits)
        return ApiError(
            422,
            "not_traceable",
            f"custom layer {names} cannot be traced for ONNX export: {culprits[0]['error']}",
            {"nodes": culprits},
        )
    suspects = _custom_nodes_anywhere(rm.files.document)
    hint = f" (custom layers in the graph: {', '.join(suspects)})" if suspects else ""
    if eager_error is not None:
        return ApiError(
            422,
            "model_fails",
            f"the model fails on its validation samples, so it cannot be exported{hint}: "
            f"{_first_line(eager_error)}",
            {"nodes": [{"node": s} for s in suspects]},
        )
    return ApiError(
        422,
        "not_traceable",
        f"the model cannot be traced for ONNX export{hint}: {_first_line(error)}",
        {"nodes": [{"node": s} for s in suspects]},
    )


def _custom_nodes_anywhere(document: dict) -> list[str]:
    found = [n.get("id") for n in document.get("nodes", []) if n.get("type") == "CustomLayer"]
    for name, block in (document.get("blocks") or {}).items():
        found += [
            f"{name}/{n.get('id')}"
            for n in block.get("nodes", [])
            if n.get("type") == "CustomLayer"
        ]
    return [str(f) for f in found]


def _check_and_compare(path: Path, model, samples, input_names, output_names) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ApiError(
            422, "onnx_invalid", f"the exported model fails onnx.checker: {_first_line(exc)}"
        ) from None
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    n = int(next(iter(samples.values())).shape[0])
    worst = 0.0
    for rows in (slice(0, n), slice(0, 1)):  # the whole batch, then batch 1: dynamic batch
        feed = {name: samples[name][rows].numpy() for name in input_names}
        got = session.run(output_names, feed)
        with torch.inference_mode():
            ref = model(*(samples[name][rows] for name in input_names))
        ref = ref if isinstance(ref, tuple) else (ref,)
        for a, b in zip(got, ref, strict=True):
            expected = b.detach().float().numpy()
            if a.shape != expected.shape:
                raise ApiError(
                    422,
                    "onnx_mismatch",
                    f"onnxruntime gives shape {list(a.shape)}, torch {list(expected.shape)}",
                )
            if a.size:
                worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - expected))))
    return {
        "opset": opset,
        "full_check": True,  # onnx.checker.check_model(full_check=True) passed
        "max_abs_diff": worst,
        "samples": n,
        "batch_sizes_checked": [n, 1],
        "tolerance": TOLERANCE,
        "within_tolerance": worst <= TOLERANCE,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }
