"""Whether a node type can hold learned parameters, so the UI offers Trainable / Freeze only
where freezing means something (never on ReLU or Flatten)."""

from __future__ import annotations

import functools
from typing import Any

from .spec import REQUIRED, NodeSpec

# Stand-ins for sizes the user or inference must give: any valid size builds the same kind of
# module, and only whether it has parameters is asked.
_PLACEHOLDER = {"int": 4, "int_or_tuple": 4, "ints": [4], "floats": [1.0], "float": 1.0}


@functools.cache
def _torch_layer_has_params(type_name: str) -> bool:
    from ..infer import torch_kwargs
    from .registry import CATALOG

    spec = CATALOG[type_name]

    params: dict[str, Any] = {}
    for p in spec.params:
        missing = p.default is REQUIRED or (p.default is None and p.infer is not None)
        params[p.name] = _PLACEHOLDER.get(p.kind, p.default) if missing else p.default
    try:
        module = spec.torch_class(**torch_kwargs(spec, params))
    except Exception:  # cannot tell: keep offering Freeze rather than hide it
        return True
    return any(True for _ in module.parameters())


def has_params(spec: NodeSpec) -> bool:
    """True when a node of this type may own parameters (a Block or custom layer may: the
    node's own inference result then says whether this one does)."""
    if spec.role in ("block", "custom") or spec.init_code is not None:
        return True
    if spec.role != "layer" or spec.torch_class is None:
        return False
    return _torch_layer_has_params(spec.type)
