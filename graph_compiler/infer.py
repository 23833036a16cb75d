"""Exact per-node shape inference on the meta device.

Each node is built as the real torch module (on `meta`, so no memory is allocated even for huge
layers) and called with meta tensors through the same forward expression the generated code
uses. Results are memoized by (type, params, input shapes): the editor re-validates on every
edit, and typical networks repeat the same layer configuration many times. The memos are shared
by the server's request threads: bounded and locked (see memo.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .catalog import NodeSpec
from .memo import Memo
from .shapes import B, Batch, Shape, TensorInfo, symbolic

_DTYPES = {
    "float32": torch.float32,
    "int64": torch.int64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "bool": torch.bool,
}
MODULE_VAR = "_m"


class NodeFailure(Exception):
    """A node could not be built or called; `stage` is 'build' or 'call'."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


@dataclass(frozen=True)
class NodeShapes:
    outputs: tuple[TensorInfo, ...]
    num_params: int
    flops: int  # forward FLOPs per sample (a multiply-add counts 2)


def torch_kwargs(spec: NodeSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments: the torch-facing params plus fixed ones (batch_first=True)."""
    kwargs: dict[str, Any] = {}
    for p in spec.params:
        if not p.torch_arg or p.name not in params:
            continue
        value = params[p.name]
        if p.as_tensor and value is not None:
            value = torch.tensor(value, dtype=torch.float32)
        kwargs[p.name] = value
    kwargs.update(spec.fixed_args)
    return kwargs


def input_names(ports: Mapping[str, int]) -> dict[str, list[str]]:
    return {port: [f"_in_{port}_{i}" for i in range(n)] for port, n in ports.items()}


@functools.lru_cache(maxsize=4096)
def _compiled(expr: str):
    """A forward expression, after any statements it needs first (one per line: a causal mask)."""
    *statements, last = expr.split("\n")
    prelude = compile("\n".join(statements), "<forward>", "exec") if statements else None
    return prelude, compile(last, "<forward>", "eval")


def _evaluate(expr: str, local: dict):
    prelude, code = _compiled(expr)
    if prelude is not None:
        exec(prelude, _GLOBALS, local)
    return eval(code, _GLOBALS, local)


# what an inline op sees as its module: the model's `self` in generated code, in eval mode here
_NO_MODULE = SimpleNamespace(training=False)


_GLOBALS = {"torch": torch, "nn": nn, "F": F, "math": math}


def _freeze(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


ModuleFactory = Callable[[], nn.Module]


# meta modules allocate no storage: 4096 of them are a few megabytes of Python objects
_MODULES: Memo[nn.Module] = Memo(4096)


def meta_module(
    spec: NodeSpec,
    params: Mapping[str, Any],
    factory: ModuleFactory | None = None,
    factory_key: Any = None,
) -> nn.Module | None:
    """The node's module on the meta device (cached), or None for inline ops. A learned tensor
    (spec.init_code) is built by its own __init__ statements on a holder module, as `_m`."""
    if spec.torch_class is None and factory is None and spec.init_code is None:
        return None

    def build() -> nn.Module:
        try:
            with torch.device("meta"):
                if spec.init_code is not None:
                    module = _holder(spec, params)
                elif factory:
                    module = factory()
                else:
                    module = spec.torch_class(**torch_kwargs(spec, params))
        except Exception as exc:  # torch validates its own arguments; relay what it says
            raise NodeFailure("build", _first_line(exc)) from exc
        return module.eval()

    return _MODULES.get_or_make((spec.type, _freeze(params), factory_key), build)


def _holder(spec: NodeSpec, params: Mapping[str, Any]) -> nn.Module:
    holder = nn.Module()
    exec("\n".join(spec.init_code(params, f"self.{MODULE_VAR}")), dict(_GLOBALS), {"self": holder})
    return holder


def held(spec: NodeSpec, module: nn.Module | None):
    """What the forward expression's module name stands for: the tensor for a learned one."""
    return getattr(module, MODULE_VAR) if spec.init_code is not None else module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]


def _meta_inputs(inputs: Mapping[str, list[TensorInfo]], batch: int) -> dict[str, torch.Tensor]:
    env = {}
    for port, infos in inputs.items():
        for i, info in enumerate(infos):
            env[f"_in_{port}_{i}"] = torch.empty(
                info.concrete(batch), dtype=_DTYPES.get(info.dtype, torch.float32), device="meta"
            )
    return env


def _run(expr: str, module: Any, env: dict, count_flops: bool):
    local = dict(env)
    local[MODULE_VAR] = module if module is not None else _NO_MODULE
    counter = FlopCounterMode(display=False) if count_flops else None
    try:
        with torch.no_grad():
            if counter is not None:
                with counter:
                    out = _evaluate(expr, local)
            else:
                out = _evaluate(expr, local)
    except Exception as exc:
        raise NodeFailure("call", _first_line(exc)) from exc
    outs = tuple(out) if isinstance(out, tuple | list) else (out,)
    for o in outs:
        if not isinstance(o, torch.Tensor):
            raise NodeFailure("call", f"forward returned {type(o).__name__}, not a tensor")
    flops = counter.get_total_flops() if counter is not None else 0
    return outs, flops


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def infer_node(
    spec: NodeSpec,
    params: Mapping[str, Any],
    inputs: Mapping[str, list[TensorInfo]],
    expr: str,
    factory: ModuleFactory | None = None,
    factory_key: Any = None,
) -> NodeShapes:
    """Output shapes, parameter count and FLOPs of one node (memoized)."""
    signature = tuple((port, tuple(infos)) for port, infos in sorted(inputs.items()))
    key = (spec.type, _freeze(params), signature, expr, factory_key)
    return _RESULTS.get_or_make(
        key, lambda: _infer_node(spec, params, inputs, expr, factory, factory_key)
    )


def _infer_node(
    spec: NodeSpec,
    params: Mapping[str, Any],
    inputs: Mapping[str, list[TensorInfo]],
    expr: str,
    factory: ModuleFactory | None,
    factory_key: Any,
) -> NodeShapes:
    module = meta_module(spec, params, factory, factory_key)
    num_params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    # FLOPs come only from matmul/conv/attention kernels: skip the counter where none can occur.
    has_weights = module is not None and (num_params > 0 or factory is not None)
    count = has_weights or spec.type == "MatMul"
    value = held(spec, module)
    outs2, flops = _run(expr, value, _meta_inputs(inputs, 2), count)
    all_infos = [i for infos in inputs.values() for i in infos]
    simple = spec.batch_preserving and all_infos and all(i.batch_leading for i in all_infos)
    shapes: list[Shape] = []
    if simple and all(o.dim() >= 1 and o.shape[0] == 2 for o in outs2):
        shapes = [(B, *o.shape[1:]) for o in outs2]
    else:
        outs3, _ = _run(expr, value, _meta_inputs(inputs, 3), False)
        outs7, _ = _run(expr, value, _meta_inputs(inputs, 7), False)
        for o2, o3, o7 in zip(outs2, outs3, outs7, strict=True):
            sym = symbolic(tuple(o2.shape), tuple(o3.shape))
            # a third batch size confirms the fit: slicing the batch (B - 1, min(B, 3)) has no
            # k·B form, and a model whose sizes depend on the batch like that cannot be described
            if sym is None or TensorInfo(sym).concrete(7) != tuple(o7.shape):
                sizes = ", ".join(
                    f"{tuple(o.shape)} at B={b}" for b, o in ((2, o2), (3, o3), (7, o7))
                )
                raise NodeFailure("batch", f"its output size depends on the batch size ({sizes})")
            shapes.append(sym)
    return NodeShapes(
        outputs=tuple(TensorInfo(s, _dtype_name(o)) for s, o in zip(shapes, outs2, strict=True)),
        num_params=num_params,
        flops=flops // 2,
    )


_RESULTS: Memo[NodeShapes] = Memo(16384)


def clear_caches() -> None:
    _RESULTS.clear()
    _MODULES.clear()
    _compiled.cache_clear()


__all__ = ["Batch", "NodeFailure", "NodeShapes", "clear_caches", "infer_node", "meta_module"]
