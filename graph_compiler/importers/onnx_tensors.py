"""Learned tensors and positions in an ONNX graph, as the catalog's Parameter / Expand /
PositionIds nodes.

- An initializer (1, ..., D) expanded to the batch (ViT's class token: Expand(cls_token,
  Concat(Shape(x)[:1], 1, 1))) → Parameter + Expand like the input. An all-zero one may also be
  a recurrent initial state, so it is held as zeros and made a Parameter only when data reads it.
- An initializer added to activations (a position embedding) → Parameter + Add.
- Range(0, a dim of a tensor's shape, 1) → PositionIds along that dim, (T,); an Unsqueeze at 0
  after it turns its batch_dim on, (1, T).

One Parameter per initializer, however many ops read it: weights are carried once.
"""

from __future__ import annotations

import numpy as np
import torch

from ..names import snake
from .graph import INPUT
from .lookup import Unsupported

PASS_THROUGH = {"Cast", "Squeeze", "Reshape", "Identity"}  # ops between Shape and a Range


class TensorOps:
    """Mixed into the ONNX converter: needs values, shapes, zeros, const(), tensor(), emit(),
    _add(), g, state; sets pending, learned, positions, producer and batch_dim."""

    def learned_parameter(self, name: str, value: np.ndarray) -> tuple[str, str]:
        """The Parameter node holding the initializer `name`, made on its first use."""
        ref = self.learned.get(name)
        if ref is None:
            made = self.g.add(
                snake(name) or "parameter",
                "Parameter",
                {"shape": [int(d) for d in value.shape]},
                [],
                label=name,
                module_path=None,
                origin="initializer",
            )
            made.module_path = made.id
            self.state[made.id] = torch.from_numpy(np.array(value, dtype=np.float32, copy=True))
            ref = self.learned[name] = (made.id, "out")
        return ref

    def pending_value(self, name: str) -> tuple[str, str] | None:
        """A value made only when data reads it (see expand_learned)."""
        make = self.pending.pop(name, None)
        if make is None:
            return None
        self.values[name] = make()
        self.zeros.discard(name)
        return self.values[name]

    def expand_learned(self, node, source: np.ndarray) -> bool:
        """Expand of a (1, ...) initializer to (batch, ...): Parameter + Expand like x."""
        out = self.shapes.get(node.output[0])
        if (
            not out
            or source.ndim != len(out)
            or source.ndim < 1
            or source.shape[0] != 1
            or out[0] != self.batch_dim
            or tuple(out[1:]) != tuple(source.shape[1:])
        ):
            return False
        name = node.input[0]

        def make() -> tuple[str, str]:
            param = self.learned_parameter(name, source)
            made = self._add(node, "Expand", {}, [("in", param), ("like", (INPUT, "x"))], None)
            return (made.id, "out")

        self.pending[node.output[0]] = make
        if not np.any(source):
            self.zeros.add(node.output[0])  # may still be an initial state
        return True

    def add_learned(self, node, constant: int) -> bool:
        """Add of an initializer (input `constant`) and a tensor: Parameter + Add."""
        name, other = node.input[constant], node.input[1 - constant]
        value = self.const(name)
        if other not in self.values and other not in self.pending:
            return False
        rank = len(self.shapes.get(other) or ())
        if value is None or value.ndim < 1 or value.ndim > rank:
            return False
        if value.ndim == rank and value.shape[0] != 1:
            raise Unsupported("adding a constant with its own batch dim")
        param = self.learned_parameter(name, value)
        self.emit(node, "Add", {}, [("in", self.tensor(other)), ("in", param)])
        return True

    # --- positions -------------------------------------------------------------------------

    def _op_Range(self, node, attrs) -> None:
        start, delta = self.const(node.input[0]), self.const(node.input[2])
        if start is None or delta is None or int(start) != 0 or int(delta) != 1:
            raise Unsupported("a range that does not start at 0 with step 1")
        tensor, axis = self._shape_dim(node.input[1])
        ref = self.tensor_raw(tensor)
        dim = self.axes(tensor)[axis]
        if dim is None or dim == 0:
            raise Unsupported("a range over the batch dim or an added size-1 dim")
        made = self._add(node, "PositionIds", {"dim": dim, "batch_dim": False}, [("in", ref)], None)
        self.values[node.output[0]] = (made.id, "out")
        self.positions[node.output[0]] = made

    def _shape_dim(self, name: str) -> tuple[str, int]:
        """(the tensor, its ONNX axis) whose length the scalar `name` is: Shape → Gather, or a
        one-element Shape slice, through Cast / Squeeze / Reshape."""
        node = self.producer.get(name)
        while node is not None and node.op_type in PASS_THROUGH:
            node = self.producer.get(node.input[0])
        index = 0
        if node is not None and node.op_type == "Gather":
            found = self.const(node.input[1])
            if found is None or found.size != 1:
                raise Unsupported("a range length that is not one dim of a shape")
            index = int(found.reshape(-1)[0])
            node = self.producer.get(node.input[0])
        if node is None or node.op_type != "Shape":
            raise Unsupported("a range length that is not a dim of a tensor's shape")
        attrs = {a.name: a.i for a in node.attribute}
        rank = len(self.shapes.get(node.input[0]) or ())
        if not rank:
            raise Unsupported(f"no rank known for {node.input[0]}")
        return node.input[0], (attrs.get("start", 0) % rank + index) % rank

    def unsqueeze_positions(self, node, where: list[int]) -> bool:
        """Unsqueeze(ids, 0) right after a Range: the PositionIds' own leading size-1 dim."""
        made = self.positions.get(node.input[0])
        if made is None or list(where) != [0] or self.uses[node.input[0]] != 1:
            return False
        made.params.pop("batch_dim", None)  # the default: (1, T)
        self.values[node.output[0]] = self.values[node.input[0]]
        return True
