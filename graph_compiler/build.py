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

from .analysis import Analysis, analyze
from .codegen import ModelInterface, _Generator, model_interface
from .errors import GraphCompileError


@dataclass(frozen=True)
class CompiledGraph:
    analysis: Analysis
    source: str
    class_name: str
    interface: ModelInterface
    attributes: dict[str, str]  # node id → submodule name in the model

    def load(self) -> types.ModuleType:
        return load_source(self.source)

    def instantiate(self, *, device: Any = None, seed: int | None = None) -> nn.Module:
        """A fresh model: seeded init, frozen nodes marked, on `device` (meta works too)."""
        cls = getattr(self.load(), self.class_name)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = cls()
        for node_id in self.interface.nodes:
            node = self.analysis.top.scope.nodes[node_id]
            if not node.trainable and hasattr(model, self.attributes[node_id]):
                getattr(model, self.attributes[node_id]).requires_grad_(False)
        return model


def compile_graph(document: Any, *, allow_custom_code: bool = False) -> CompiledGraph:
    analysis = (
        document
        if isinstance(document, Analysis)
        else analyze(document, allow_custom_code=allow_custom_code)
    )
    if not analysis.ok:
        raise GraphCompileError(analysis.errors)
    gen = _Generator(analysis)
    source = gen.source()
    attrs = gen.node_names(analysis.top.scope)
    return CompiledGraph(analysis, source, gen.model_class, model_interface(analysis), attrs)


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
