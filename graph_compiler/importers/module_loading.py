"""The user's model for `import-module`: `file.py:Class` imported, then instantiated from --args.

Trusted local code only: the file is executed as a module (the CLI's job; the server never calls
this). Every failure is an ImportFailed that names the file, the class or the arguments.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from torch import nn

from ..names import snake
from .graph import ImportFailed


def load_class(spec: str) -> type[nn.Module]:
    """`path/to/file.py:ClassName` → the class (the file is imported: trusted code only)."""
    path_text, sep, class_name = spec.rpartition(":")
    if not sep or not path_text or not class_name:
        raise ImportFailed(f"{spec!r}: expected path/to/file.py:ClassName")
    path = Path(path_text)
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    name = f"torchloom_import_{snake(path.stem)}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportFailed(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.resolve().parent))  # its sibling imports
    try:
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ImportFailed(f"{path} fails to import: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ImportFailed(f"{path} defines no {class_name}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ImportFailed(f"{path}:{class_name} is not an nn.Module class")
    return cls


def instantiate(cls: type[nn.Module], args: Any) -> nn.Module:
    """The model from --args: a JSON object (keyword arguments) or list (positional)."""
    try:
        if args is None:
            return cls()
        if isinstance(args, dict):
            return cls(**args)
        if isinstance(args, list):
            return cls(*args)
    except Exception as exc:
        raise ImportFailed(
            f"{cls.__name__}({_short(args)}) fails: {type(exc).__name__}: {exc}"
        ) from None
    raise ImportFailed("--args must be a JSON object (keyword arguments) or list (positional)")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
