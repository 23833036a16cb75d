"""Unique, valid, readable Python names from user labels (after torch.fx's Namespace)."""

from __future__ import annotations

import builtins
import keyword
import re

from torch import nn

# Names a generated module must not take: Python's, nn.Module's own attributes, and the
# modules the generated file imports.
RESERVED = frozenset(
    set(keyword.kwlist)
    | set(keyword.softkwlist)
    | set(dir(builtins))
    | {name for name in dir(nn.Module) if not name.startswith("__")}
    | set(vars(nn.Module()))  # instance attributes such as `training`
    | {"self", "torch", "nn", "F", "math"}
)


def snake(label: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", label.strip())
    text = re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    if not text:
        text = "node"
    if text[0].isdigit():
        text = f"n{text}"
    return text


def camel(label: str, fallback: str = "Model") -> str:
    words = [w for w in re.split(r"[^0-9a-zA-Z]+", label) if w]
    text = "".join(w[0].upper() + w[1:] for w in words) or fallback
    if text[0].isdigit():
        text = f"{fallback}{text}"
    return text


class Namespace:
    """Hands out unique identifiers; the same object always gets the same name."""

    def __init__(self, reserved: frozenset[str] | set[str] = RESERVED):
        self._used: set[str] = set(reserved)
        self._by_key: dict[object, str] = {}

    def create(self, hint: str, key: object | None = None, style: str = "snake") -> str:
        if key is not None and key in self._by_key:
            return self._by_key[key]
        base = (snake(hint) if style == "snake" else camel(hint))[:60]
        name = base
        i = 2
        while name in self._used:
            name = f"{base}_{i}" if style == "snake" else f"{base}{i}"
            i += 1
        self._used.add(name)
        if key is not None:
            self._by_key[key] = name
        return name
