"""From torch objects to catalog nodes, derived from the catalog itself.

* modules: the catalog entry whose `torch_class` is the module's exact class; its params are read
  off the module's attributes (the constructor arguments torch keeps under the same names), with
  a few readers for composite modules that keep them on their children;
* functions: `F.relu`, `torch.flatten`, `x.softmax(...)`, ... map to the catalog layer of the
  same name (ReLU, Flatten, Softmax): the function's arguments bind to the layer's params by
  name. Functions that take weights (F.linear, F.conv2d, ...) are never matched.

Anything that does not fit (an argument the catalog cannot express, a value out of range)
comes back as a reason, and the importer keeps the call as an opaque node.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..catalog import CATALOG, NodeSpec
from ..catalog.spec import REQUIRED
from ..render import torch_defaults

IGNORED_ARGS = frozenset({"inplace", "training", "_stacklevel", "device", "dtype"})
WEIGHT_ARGS = frozenset({"weight", "bias", "running_mean", "running_var", "params", "hx"})


class Unsupported(Exception):
    """A torch object that no catalog node expresses exactly (the message says why)."""


@functools.cache
def specs_by_class() -> dict[type, NodeSpec]:
    return {
        spec.torch_class: spec
        for spec in CATALOG.values()
        if spec.role == "layer" and isinstance(spec.torch_class, type)
    }


def spec_for_module(module: nn.Module) -> NodeSpec | None:
    return specs_by_class().get(type(module))


# --- modules ------------------------------------------------------------------------------------


def _activation_name(m: nn.TransformerEncoderLayer) -> str:
    act = m.activation
    name = act.__name__ if callable(act) and hasattr(act, "__name__") else type(act).__name__
    name = name.lower()
    if name not in ("relu", "gelu"):
        raise Unsupported(f"activation {name} (the catalog offers relu and gelu)")
    return name


def _layer_norm_shape(m: nn.LayerNorm | nn.RMSNorm) -> int:
    if len(m.normalized_shape) != 1:
        raise Unsupported(
            f"normalized_shape {list(m.normalized_shape)} (the catalog normalizes the last dim)"
        )
    return int(m.normalized_shape[0])


def _mha_checks(m: nn.MultiheadAttention) -> None:
    if m.bias_k is not None or m.add_zero_attn or not m._qkv_same_embed_dim:
        raise Unsupported("add_bias_kv, add_zero_attn or kdim/vdim other than embed_dim")


# Params that a module keeps somewhere other than an attribute of the same name.
READERS: dict[type, dict[str, Callable[[Any], Any]]] = {
    nn.MultiheadAttention: {"bias": lambda m: m.in_proj_bias is not None},
    nn.TransformerEncoderLayer: {
        "nhead": lambda m: m.self_attn.num_heads,
        "dim_feedforward": lambda m: m.linear1.out_features,
        "dropout": lambda m: m.dropout.p,
        "activation": _activation_name,
        "layer_norm_eps": lambda m: m.norm1.eps,
        "bias": lambda m: m.linear1.bias is not None,
        "batch_first": lambda m: m.self_attn.batch_first,
    },
    nn.LayerNorm: {"normalized_shape": _layer_norm_shape},
    nn.RMSNorm: {"normalized_shape": _layer_norm_shape},
}
CHECKS: dict[type, Callable[[Any], None]] = {nn.MultiheadAttention: _mha_checks}
CHECKED_ARGS: dict[type, frozenset[str]] = {nn.MultiheadAttention: frozenset({"kdim", "vdim"})}


def _attribute(module: nn.Module, name: str, kind: str) -> Any:
    reader = READERS.get(type(module), {}).get(name)
    if reader is not None:
        return reader(module)
    if not hasattr(module, name):
        return REQUIRED
    value = getattr(module, name)
    if kind == "bool" and (value is None or isinstance(value, torch.Tensor)):
        return value is not None  # bias=True keeps a tensor, bias=False keeps None
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Size | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


def normalized(spec: NodeSpec, name: str, value: Any) -> Any:
    """A value checked by the catalog param (tuples of equal sizes written as one int)."""
    p = spec.param(name)
    assert p is not None
    value = _plain(value)
    if p.kind == "int_or_tuple" and isinstance(value, list) and len(set(value)) == 1:
        value = value[0]
    if p.kind == "int" and isinstance(value, list) and len(value) == 1:
        value = value[0]
    if p.kind == "ints" and isinstance(value, int):
        value = [value]
    norm, problem = p.check(value)
    if problem is not None:
        raise Unsupported(f"{name}={value!r}: {problem[1]}")
    return list(norm) if isinstance(norm, tuple) else norm


def _same(a: Any, b: Any) -> bool:
    a, b = _plain(a), _plain(b)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=0)
    if isinstance(a, list) and not isinstance(b, list):
        return all(x == b for x in a)
    return a == b


def module_params(module: nn.Module, spec: NodeSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the node's params, the inferred sizes the module has): defaults left out; Unsupported
    when the module uses a constructor argument the catalog does not express."""
    check = CHECKS.get(type(module))
    if check is not None:
        check(module)
    params: dict[str, Any] = {}
    inferred: dict[str, Any] = {}
    for p in spec.params:
        if not p.torch_arg:
            continue
        value = _attribute(module, p.name, p.kind)
        if value is REQUIRED:
            continue  # not kept by the module (PReLU's init lives in its weight)
        value = normalized(spec, p.name, value)
        if p.infer is not None:
            inferred[p.name] = value
        elif p.default is REQUIRED or not _same(value, p.default):
            params[p.name] = value
    for name, fixed in spec.fixed_args.items():
        actual = _attribute(module, name, "bool")
        if actual is not REQUIRED and actual != fixed:
            raise Unsupported(f"{name}={actual!r} (torchloom builds it with {name}={fixed!r})")
    known = {p.name for p in spec.params} | set(spec.fixed_args) | IGNORED_ARGS
    known |= CHECKED_ARGS.get(type(module), frozenset())  # by CHECKS
    for name, default in torch_defaults(type(module)).items():
        if name in known or not hasattr(module, name):
            continue
        value = getattr(module, name)
        if isinstance(value, torch.Tensor | nn.Module) or callable(value):
            continue
        if not _same(value, default):
            raise Unsupported(f"{name}={_plain(value)!r} has no catalog param")
    if "output" in {p.name for p in spec.params}:  # recurrent layers: set by the importer
        params.pop("output", None)
    return params, inferred


# --- functions ----------------------------------------------------------------------------------


def _candidates(class_name: str) -> set[str]:
    """Function names for a class name: with or without "_" at each lower→upper boundary
    (LeakyReLU → leakyrelu, leaky_relu, ...; LogSoftmax → log_softmax)."""
    parts = re.split(r"(?<=[a-z0-9])(?=[A-Z])", class_name)
    names = {parts[0].lower()}
    for part in parts[1:]:
        names = {f"{n}{sep}{part.lower()}" for n in names for sep in ("", "_")}
    return names


@functools.cache
def _signature(fn: Any) -> inspect.Signature | None:
    from torch.overrides import get_testing_overrides

    for candidate in (fn, getattr(F, f"_{getattr(fn, '__name__', '')}", None)):
        if candidate is None:
            continue
        try:
            sig = inspect.signature(candidate)
        except (TypeError, ValueError):
            continue
        if not any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
            return sig
    override = get_testing_overrides().get(fn)
    return inspect.signature(override) if override is not None else None


@functools.cache
def function_table() -> dict[Any, NodeSpec]:
    """Weight-free torch.nn.functional functions named like a catalog layer, the torch.* and
    Tensor-method spellings of the same name; keys are functions, and method names (str)."""
    table: dict[Any, NodeSpec] = {}
    for cls, spec in specs_by_class().items():
        for name in _candidates(cls.__name__):
            found = [getattr(holder, name, None) for holder in (F, torch)]
            found = [fn for fn in found if callable(fn) and _weight_free(fn)]
            for fn in found:
                table[fn] = spec
            method = getattr(torch.Tensor, name, None)
            if found and method is not None and _weight_free(method):
                table[name] = spec
    return table


def _weight_free(fn: Any) -> bool:
    sig = _signature(fn)
    if sig is None or not sig.parameters:
        return False
    first = next(iter(sig.parameters))
    return first in ("input", "self", "x") and not WEIGHT_ARGS & set(sig.parameters)


def function_params(fn: Any, spec: NodeSpec, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The node's params from a call's arguments (the tensor first); Unsupported when an
    argument has no param, or is not a constant."""
    target = getattr(torch.Tensor, fn) if isinstance(fn, str) else fn
    sig = _signature(target)
    if sig is None:
        raise Unsupported("its signature is unknown")
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise Unsupported(str(exc)) from None
    bound.apply_defaults()
    names = list(sig.parameters)
    params: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if name == names[0] or name in IGNORED_ARGS:
            continue
        p = spec.param(name)
        if p is None or not p.torch_arg:
            if value != sig.parameters[name].default:
                raise Unsupported(f"argument {name}={value!r} has no catalog param")
            continue
        if isinstance(value, torch.fx.Node):
            raise Unsupported(f"argument {name} is computed at run time")
        value = normalized(spec, name, value)
        if p.default is REQUIRED or not _same(value, p.default):
            params[name] = value
    missing = [p.name for p in spec.params if p.required and p.name not in params]
    if missing:
        raise Unsupported(f"no value for {', '.join(missing)}")
    return params
