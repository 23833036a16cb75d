"""Padded token batches as torch's exporter writes them: PaddingMask (`x.eq(pad_id)`: an Equal
of the token ids and a constant) and MaskedPool, found as one region each and imported as one
node.

MaskedPool's three modes (graph_compiler/catalog/masks.py) decompose into (mask = the Equal):
- max:  Unsqueeze(mask, -1) → Where(·, -inf, seq) → ReduceMax(axis 1, keepdims 0)
- mean: Not(mask) → Unsqueeze(-1) → Cast(float) → Mul(seq, ·) → ReduceSum(axis 1) and
        ReduceSum(·, axis 1) → Max(·, 1) → Div(sum, count)
- last: Not(mask) → Cast → ReduceSum(axis 1) → Sub(1) → Clip(0) → Unsqueeze(-1), with
        Range(0, B, 1) → Unsqueeze(-1), Concat(axis -1) → GatherND(seq, ·)
Each region is matched from the Equal forward; every constant (the fill, the axes, the clamp
bounds, the Range) is read and checked, and no value inside a region may be read outside it or
be a graph output, so a region is only ever replaced by the node it computes.
"""

from __future__ import annotations

import numpy as np

from .lookup import Unsupported
from .onnx_attention import EncoderMatch


def find_masked_pools(nodes: list, consts: dict, outputs: set[str]) -> list[EncoderMatch]:
    """One match per MaskedPool, starting at its last node (both its inputs come before)."""
    finder = _Finder(nodes, consts, outputs)
    found = []
    for node in nodes:
        if node.op_type != "Equal":
            continue
        mask = node.output[0]
        found += [m for m in (finder.max(mask), finder.mean(mask), finder.last(mask)) if m]
    return found


class _Finder:
    def __init__(self, nodes: list, consts: dict, outputs: set[str]):
        self.nodes, self.consts, self.outputs = nodes, consts, outputs
        self.consumers: dict[str, list[int]] = {}
        self.producer: dict[str, int] = {}
        for i, node in enumerate(nodes):
            for name in node.input:
                self.consumers.setdefault(name, []).append(i)
            for name in node.output:
                self.producer[name] = i

    def users(self, value: str, op: str) -> list[int]:
        return [i for i in self.consumers.get(value, []) if self.nodes[i].op_type == op]

    def scalar(self, name: str) -> float | None:
        value = self.consts.get(name)
        return None if value is None or value.size != 1 else float(value.reshape(-1)[0])

    def axes(self, index: int) -> list[int] | None:
        node = self.nodes[index]
        attrs = {a.name: a for a in node.attribute}
        if "axes" in attrs:
            return list(attrs["axes"].ints)
        found = self.consts.get(node.input[1]) if len(node.input) > 1 else None
        return None if found is None else [int(a) for a in found.reshape(-1)]

    def reduces_time(self, index: int) -> bool:
        """Over axis 1 of a (B, T[, H]) value, the axis dropped."""
        attrs = {a.name: a.i for a in self.nodes[index].attribute if a.name == "keepdims"}
        return self.axes(index) == [1] and attrs.get("keepdims", 1) == 0

    def other(self, index: int, value: str) -> str:
        return next((n for n in self.nodes[index].input if n != value), "")

    def closed(self, region: set[int], output: str) -> bool:
        """Every value made inside the region is read only inside it (the output excepted)."""
        for i in region:
            for name in self.nodes[i].output:
                if name == output:
                    continue
                if name in self.outputs or not set(self.consumers.get(name, [])) <= region:
                    return False
        return True

    def match(self, region: set[int], seq: str, mask: str, output: str, mode: str):
        if not self.closed(region, output):
            return None
        end = self.producer[output]
        return EncoderMatch(
            end, region, seq, output, {"mode": mode}, type_="MaskedPool", more={"mask": mask}
        )

    def unsqueezed_last(self, value: str) -> list[int]:
        return [i for i in self.users(value, "Unsqueeze") if self.axes(i) == [-1]]

    def max(self, mask: str):
        for unsq in self.unsqueezed_last(mask):
            for where in self.users(self.nodes[unsq].output[0], "Where"):
                _, fill, seq = self.nodes[where].input
                if self.scalar(fill) != -np.inf:
                    continue
                for amax in self.users(self.nodes[where].output[0], "ReduceMax"):
                    if self.reduces_time(amax):
                        output = self.nodes[amax].output[0]
                        return self.match({unsq, where, amax}, seq, mask, output, "max")
        return None

    def mean(self, mask: str):
        for keep in self.users(mask, "Not"):
            for unsq in self.unsqueezed_last(self.nodes[keep].output[0]):
                for cast in self.users(self.nodes[unsq].output[0], "Cast"):
                    found = self._mean_from(keep, unsq, cast, mask)
                    if found is not None:
                        return found
        return None

    def _mean_from(self, keep: int, unsq: int, cast: int, mask: str):
        weights = self.nodes[cast].output[0]
        muls, counts = self.users(weights, "Mul"), self.users(weights, "ReduceSum")
        for mul in muls:
            seq = self.other(mul, weights)
            for total in self.users(self.nodes[mul].output[0], "ReduceSum"):
                for count in counts:
                    if not (self.reduces_time(total) and self.reduces_time(count)):
                        continue
                    for clamp in self.users(self.nodes[count].output[0], "Max"):
                        low = self.other(clamp, self.nodes[count].output[0])
                        if self.scalar(low) != 1.0:
                            continue
                        for div in self.users(self.nodes[clamp].output[0], "Div"):
                            if list(self.nodes[div].input) != [
                                self.nodes[total].output[0],
                                self.nodes[clamp].output[0],
                            ]:
                                continue
                            region = {keep, unsq, cast, mul, total, count, clamp, div}
                            output = self.nodes[div].output[0]
                            return self.match(region, seq, mask, output, "mean")
        return None

    def last(self, mask: str):
        for keep in self.users(mask, "Not"):
            for cast in self.users(self.nodes[keep].output[0], "Cast"):
                for total in self.users(self.nodes[cast].output[0], "ReduceSum"):
                    if self.reduces_time(total):
                        found = self._last_from([keep, cast, total], mask)
                        if found is not None:
                            return found
        return None

    def _last_from(self, steps: list[int], mask: str):
        """From the real lengths (ReduceSum) to the GatherND of each row's last real step."""
        lengths = self.nodes[steps[-1]].output[0]
        for sub in self.users(lengths, "Sub"):
            if self.nodes[sub].input[0] != lengths or self.scalar(self.nodes[sub].input[1]) != 1:
                continue
            for clip in self.users(self.nodes[sub].output[0], "Clip"):
                bounds = list(self.nodes[clip].input[1:])
                if len(bounds) < 1 or self.scalar(bounds[0]) != 0 or any(bounds[1:]):
                    continue
                for unsq in self.unsqueezed_last(self.nodes[clip].output[0]):
                    found = self._gathered([*steps, sub, clip, unsq], mask)
                    if found is not None:
                        return found
        return None

    def _gathered(self, steps: list[int], mask: str):
        index = self.nodes[steps[-1]].output[0]
        for concat in self.users(index, "Concat"):
            joined = list(self.nodes[concat].input)
            rows, step = joined if len(joined) == 2 else ("", "")
            axis = [a.i for a in self.nodes[concat].attribute if a.name == "axis"]
            if step != index or axis not in ([-1], [1]) or self._batch_range(rows) is None:
                continue
            for gather in self.users(self.nodes[concat].output[0], "GatherND"):
                batch_dims = [a.i for a in self.nodes[gather].attribute if a.name == "batch_dims"]
                wanted = self.nodes[concat].output[0]
                if batch_dims not in ([], [0]) or self.nodes[gather].input[1] != wanted:
                    continue
                region = {*steps, concat, gather, *self._batch_range(rows)}
                seq, output = self.nodes[gather].input[0], self.nodes[gather].output[0]
                return self.match(region, seq, mask, output, "last")
        return None

    def _batch_range(self, rows: str) -> list[int] | None:
        """Unsqueeze(Range(0, n, 1), -1): the row numbers, n the batch size (dim 0 of a Shape)."""
        unsq = self.producer.get(rows)
        if unsq is None or self.nodes[unsq].op_type != "Unsqueeze" or self.axes(unsq) != [-1]:
            return None
        made = self.producer.get(self.nodes[unsq].input[0])
        if made is None or self.nodes[made].op_type != "Range":
            return None
        start, end, delta = self.nodes[made].input
        if self.scalar(start) != 0 or self.scalar(delta) != 1 or not self._batch_size(end):
            return None
        return [unsq, made]

    def _batch_size(self, name: str) -> bool:
        """Squeeze(Shape(v, start=0, end=1)) or Gather(Shape(v), 0): dim 0 of a value."""
        made = self.producer.get(name)
        node = None if made is None else self.nodes[made]
        if node is None or node.op_type not in ("Squeeze", "Gather"):
            return False
        if node.op_type == "Gather" and (len(node.input) < 2 or self.scalar(node.input[1]) != 0):
            return False
        shape = self.producer.get(node.input[0])
        if shape is None or self.nodes[shape].op_type != "Shape":
            return False
        attrs = {a.name: a.i for a in self.nodes[shape].attribute}
        if node.op_type == "Gather":
            return attrs.get("start", 0) == 0
        return attrs.get("start", 0) == 0 and attrs.get("end") == 1


class MaskOps:
    """Mixed into the ONNX converter: an Equal of token ids and a constant → PaddingMask."""

    def _op_Equal(self, node, attrs) -> None:
        found = [self.const(name) for name in node.input]
        if found[0] is not None or found[1] is None or found[1].size != 1:
            raise Unsupported("an Equal other than of token ids and one constant (PaddingMask)")
        pad = found[1].reshape(-1)[0]
        if found[1].dtype.kind not in "iu" or pad < 0:
            raise Unsupported("a comparison with a constant that is not a token id")
        self.emit(node, "PaddingMask", {"pad_id": int(pad)}, [("in", self.tensor(node.input[0]))])
