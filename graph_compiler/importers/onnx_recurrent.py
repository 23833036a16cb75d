"""ONNX LSTM / GRU / RNN ops as the catalog's batch-first LSTM / GRU / RNN nodes, weights carried.

ONNX stacks the gates in another order than torch: LSTM i,o,f,c (torch i,f,g,o), GRU z,r,h
(torch r,z,n). Torch's GRU is ONNX's with linear_before_reset=1; anything else (peepholes,
clipping, custom activations, sequence lengths, a non-zero initial state, the final-state outputs
read by the graph) is named as unsupported rather than imported approximately.
"""

from __future__ import annotations

import numpy as np

from .lookup import Unsupported

# ONNX gate block → its place in torch's order
GATES = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def _torch_order(kind: str, w: np.ndarray, hidden: int) -> np.ndarray:
    """Rows of one direction's (gates·H, ...) ONNX weight in torch's gate order."""
    blocks = [w[i * hidden : (i + 1) * hidden] for i in range(len(GATES[kind]))]
    return np.concatenate([blocks[i] for i in GATES[kind]], axis=0)


class RecurrentOps:
    """Mixed into the ONNX converter."""

    def _op_LSTM(self, node, attrs) -> None:
        self._recurrent(node, attrs, "LSTM")

    def _op_GRU(self, node, attrs) -> None:
        self._recurrent(node, attrs, "GRU")

    def _op_RNN(self, node, attrs) -> None:
        self._recurrent(node, attrs, "RNN")

    def _recurrent(self, node, attrs, kind: str) -> None:
        hidden = int(attrs["hidden_size"])
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction not in ("forward", "bidirectional"):
            raise Unsupported(f"direction {direction}")
        dirs = 2 if direction == "bidirectional" else 1
        params: dict = {"hidden_size": hidden, "output": "sequence"}
        if dirs == 2:
            params["bidirectional"] = True
        self._check_plain(node, attrs, kind, params)
        w, r = self.const(node.input[1]), self.const(node.input[2])
        if w is None or r is None:
            raise Unsupported("weights that are not constants")
        b = self.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        gates = len(GATES[kind])
        weights = {}
        for d in range(dirs):
            suffix = "_l0_reverse" if d else "_l0"
            weights[f"weight_ih{suffix}"] = _torch_order(kind, w[d], hidden)
            weights[f"weight_hh{suffix}"] = _torch_order(kind, r[d], hidden)
            if b is not None:
                split = gates * hidden
                weights[f"bias_ih{suffix}"] = _torch_order(kind, b[d][:split], hidden)
                weights[f"bias_hh{suffix}"] = _torch_order(kind, b[d][split:], hidden)
        if b is None:
            params["bias"] = False
        time_major = attrs.get("layout", 0) == 0
        x = self._sequence_input(node.input[0], time_major)
        self.emit(node, kind, params, [("in", x)], weights)
        ref = self.values[node.output[0]]
        if dirs == 2:  # (B, T, 2H) → (B, T, 2, H), the directions as ONNX keeps them apart
            steps = (self.shapes.get(node.input[0]) or (None, None))[0 if time_major else 1]
            if not isinstance(steps, int):
                raise Unsupported("a bidirectional layer over a sequence of unknown length")
            ref = self.emit_on(node, "Reshape", {"shape": [steps, 2, hidden]}, ref)
            axes = [1, 2, 0, 3] if time_major else [0, 1, 2, 3]
        else:
            axes = [1, None, 0, 2] if time_major else [0, 1, None, 2]
        self.set_lazy(node.output[0], ref, axes)

    def _check_plain(self, node, attrs, kind: str, params: dict) -> None:
        if "clip" in attrs:
            raise Unsupported("cell clipping")
        activations = [
            a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])
        ]
        if kind == "RNN":
            names = {a.lower() for a in activations} or {"tanh"}
            if len(names) != 1 or not names <= {"tanh", "relu"}:
                raise Unsupported(f"activations {activations}")
            params["nonlinearity"] = names.pop()
        elif (
            activations
            and activations[: len(DEFAULT_ACTIVATIONS[kind])] != (DEFAULT_ACTIVATIONS[kind])
        ):
            raise Unsupported(f"activations {activations}")
        if kind == "GRU" and attrs.get("linear_before_reset", 0) != 1:
            raise Unsupported("linear_before_reset=0 (torch's GRU applies it before the reset)")
        if kind == "LSTM" and attrs.get("input_forget", 0):
            raise Unsupported("coupled input and forget gates")
        extra = list(node.input[4:])
        if extra and extra[0]:
            raise Unsupported("sequence lengths")
        for name in extra[1:]:
            value = self.const(name) if name else None
            if name and name not in self.zeros and (value is None or np.any(value)):
                raise Unsupported(f"an initial state or peephole {name} that is not zeros")
        for name in node.output[1:]:
            if name and self.uses[name]:
                raise Unsupported(f"its final state {name} is read by the graph")

    def _sequence_input(self, name: str, time_major: bool):
        if not time_major:
            return self.tensor(name)
        if self.layout.get(name) != [1, 0, 2]:
            raise Unsupported(f"a time-major input {name} that is not a transposed (B, T, F)")
        return self.values[name]
