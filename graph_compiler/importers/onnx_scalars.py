"""A tensor and a constant number in an ONNX graph (Add / Sub / Mul / Div with a 0-d constant,
Neg), as the catalog's Scale node (x · scale + shift): what torch writes for `x * 4`, `x + 1`,
`1 - x`, `x / 8` and `-x`, and for torchloom's own Scale nodes.
"""

from __future__ import annotations

import numpy as np

from .lookup import Unsupported


class ScalarOps:
    """Mixed into the ONNX converter: needs values, pending, const() and tensor(), emit()."""

    def scalar_affine(self, node) -> bool:
        """Add / Sub / Mul / Div of a float tensor and a 0-d float constant → Scale; False when
        the node is not that (two tensors, a constant with a shape: a learned tensor)."""
        if len(node.input) != 2:
            return False
        found = [self.const(name) for name in node.input]
        scalar = [
            i for i, v in enumerate(found) if v is not None and v.ndim == 0 and v.dtype.kind == "f"
        ]
        if len(scalar) != 1:
            return False
        constant = scalar[0]
        other = node.input[1 - constant]
        if other not in self.values and other not in self.pending:
            return False
        c = float(found[constant])
        tensor_first = constant == 1
        op = node.op_type
        if op == "Add":
            scale, shift = 1.0, c
        elif op == "Mul":
            scale, shift = c, 0.0
        elif op == "Sub":
            scale, shift = (1.0, -c) if tensor_first else (-1.0, c)
        elif op == "Div" and tensor_first and c != 0:
            scale, shift = float(np.float32(1.0) / np.float32(c)), 0.0
        else:
            return False  # c / x is not affine
        self._scale(node, other, scale, shift)
        return True

    def _scale(self, node, source: str, scale: float, shift: float) -> None:
        params = {k: v for k, v in (("scale", scale), ("shift", shift)) if v != (k == "scale")}
        self.emit(node, "Scale", params, [("in", self.tensor(source))])

    def _op_Sub(self, node, attrs) -> None:
        if not self.scalar_affine(node):
            raise Unsupported("a difference of two tensors (no catalog node)")

    def _op_Div(self, node, attrs) -> None:
        if not self.scalar_affine(node):
            raise Unsupported("a division other than by a constant number")

    def _op_Neg(self, node, attrs) -> None:
        self._scale(node, node.input[0], -1.0, 0.0)
