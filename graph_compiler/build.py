"""The module the app trains: obtained by executing the generated model.py (one source of truth)."""

from __future__ import annotations

import contextlib
import hashlib
import linecache
import sys
import types
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .analysis import MODEL_ROLES, Analysis, Scope
from .codegen import ModelInterface, _Generator, checked_analysis, model_interface


@dataclass(frozen=True)
class CompiledGraph:
    analysis: Analysis
    source: str
    class_name: str
    interface: ModelInterface
    attributes: dict[str, str]  # node id → submodule name in the model
    frozen: tuple[str, ...] = ()  # module / parameter paths of nodes marked trainable: false

    def load(self) -> types.ModuleType:
        return load_source(self.source)

    def instantiate(self, *, device: Any = None, seed: int | None = None) -> nn.Module:
        """A fresh model: seeded init, frozen nodes marked, on `device` (meta works too)."""
        cls = getattr(self.load(), self.class_name)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = cls()
        for path in self.frozen:  # a submodule, or a learned tensor (Parameter node)
            owner, _, name = path.rpartition(".")
            getattr(model.get_submodule(owner), name).requires_grad_(False)
        return model


def compile_graph(document: Any, *, allow_custom_code: bool = False) -> CompiledGraph:
    analysis = checked_analysis(document, allow_custom_code=allow_custom_code)
    gen = _Generator(analysis)
    source = gen.source()
    attrs = gen.node_names(analysis.top.scope)
    interface = model_interface(analysis)
    frozen = _frozen_paths(analysis, analysis.top.scope, interface.nodes, "")
    return CompiledGraph(analysis, source, gen.model_class, interface, attrs, tuple(frozen))


def _frozen_paths(analysis: Analysis, scope: Scope, nodes, prefix: str) -> list[str]:
    """Module paths to freeze, blocks included (`stage.2.conv1` for repeat 3)."""
    names = _Generator.node_names(scope)
    paths: list[str] = []
    for node_id in nodes:
        node, spec = scope.nodes[node_id], scope.specs[node_id]
        if spec.role == "op":
            continue
        path = f"{prefix}{names[node_id]}"
        if not node.trainable:
            paths.append(path)
        elif spec.role == "block":
            inner = analysis.blocks[scope.params[node_id]["block"]]
            inner_nodes = [n for n in inner.order if inner.specs[n].role in MODEL_ROLES]
            repeat = scope.params[node_id].get("repeat", 1)
            for i in range(repeat):
                sub_prefix = f"{path}.{i}." if repeat > 1 else f"{path}."
                paths += _frozen_paths(analysis, inner, inner_nodes, sub_prefix)
    return paths


def load_source(source: str) -> types.ModuleType:
    """Execute generated source as a real, importable module (picklable classes, tracebacks)."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    name = f"torchloom_generated_{digest}"
    cached = sys.modules.get(name)
    if cached is not None:
        return cached
    filename = f"<torchloom model {digest}>"
    module = types.ModuleType(name)
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    sys.modules[name] = module
    _LOADED.append((name, filename))
    while len(_LOADED) > _MAX_LOADED:  # a long-running server builds many graphs: keep a window
        old_name, old_file = _LOADED.pop(0)
        sys.modules.pop(old_name, None)
        linecache.cache.pop(old_file, None)
    return module


_LOADED: list[tuple[str, str]] = []
_MAX_LOADED = 64


def build_module(
    document: Any, *, allow_custom_code: bool = False, device: Any = None, seed: int | None = None
) -> nn.Module:
    return compile_graph(document, allow_custom_code=allow_custom_code).instantiate(
        device=device, seed=seed
    )
