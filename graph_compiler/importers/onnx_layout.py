"""ONNX values whose axes are not (yet) in torchloom's batch-first order, and the ops on them.

Exporters write recurrent layers time-major (Transpose x to (T, B, F), GRU, Transpose back) and
add size-1 axes (Unsqueeze, a GRU's num_directions) that a batch-first graph never needs. So a
value may be held lazily as `axes`: for each ONNX axis, the dim of the torchloom tensor it is
(None: a size-1 axis that tensor does not have). Transpose / Unsqueeze / size-1 Reshape only
rewrite `axes`; Slice / Gather / Squeeze act on the mapped dim directly; any other op takes the
tensor through `tensor()`, which writes the Permute / Unsqueeze nodes only when the batch is back
first — a value whose batch stays moved is an error naming the op that needs it.
"""

from __future__ import annotations

import numpy as np

from .lookup import Unsupported

Axes = list  # list[int | None]
BIG = 2**62  # ONNX writes "to the end" as INT64_MAX (or near it)


class LayoutOps:
    """Mixed into the ONNX converter: needs values, layout, zeros, const(), emit_on()."""

    def axes(self, name: str) -> Axes:
        found = self.layout.get(name)
        if found is not None:
            return list(found)
        rank = len(self.shapes.get(name) or ())
        if not rank:
            raise Unsupported(f"no rank known for {name}")
        return list(range(rank))

    def set_lazy(self, name: str, ref: tuple[str, str], axes: Axes) -> None:
        self.values[name] = ref
        if axes == list(range(len(axes))):
            self.layout.pop(name, None)
        else:
            self.layout[name] = axes

    def materialize(self, name: str, ref: tuple[str, str], where) -> tuple[str, str]:
        """The batch-first tensor of a lazily held value: Permute, then Unsqueeze the extra axes."""
        axes = self.layout[name]
        if axes[0] != 0:
            raise Unsupported(f"its input {name} has the batch dim at axis {axes.index(0)}")
        real = [a for a in axes if a is not None]
        if real != sorted(real):
            moved = [i for i, p in enumerate(real) if p != i]
            if len(moved) == 2:
                params = {"dim0": moved[0], "dim1": moved[1]}
                ref = self.emit_on(where, "Transpose", params, ref, suffix="transpose")
            else:
                ref = self.emit_on(where, "Permute", {"dims": real}, ref, suffix="permute")
        for i, a in enumerate(axes):
            if a is None:
                ref = self.emit_on(where, "Unsqueeze", {"dim": i}, ref, suffix="unsqueeze")
        self.values[name] = ref
        del self.layout[name]
        return ref

    def _ints(self, name: str, what: str) -> list[int]:
        found = self.const(name)
        if found is None:
            raise Unsupported(f"{what} that are not constants")
        return [int(v) for v in np.asarray(found).reshape(-1)]

    # --- ops that only move axes ---------------------------------------------------------

    def _op_Transpose(self, node, attrs) -> None:
        ref = self.tensor_raw(node.input[0])
        axes = self.axes(node.input[0])
        perm = list(attrs.get("perm", range(len(axes))[::-1]))
        self.set_lazy(node.output[0], ref, [axes[p] for p in perm])
        self.materialize_if_batch_first(node)

    def materialize_if_batch_first(self, node) -> None:
        """A permutation that keeps the batch first is a node now (the graph reads as written)."""
        name = node.output[0]
        axes = self.layout.get(name)
        if axes is not None and axes[0] == 0 and None not in axes:
            self.materialize(name, self.values[name], node)

    def _op_Unsqueeze(self, node, attrs) -> None:
        ref = self.tensor_raw(node.input[0])
        axes = self.axes(node.input[0])
        where = attrs.get("axes") or self._ints(node.input[1], "axes")
        if self.unsqueeze_positions(node, where):
            return
        rank = len(axes) + len(where)
        for a in sorted(w % rank for w in where):
            axes.insert(a, None)
        self.set_lazy(node.output[0], ref, axes)

    def _op_Squeeze(self, node, attrs) -> None:
        ref = self.tensor_raw(node.input[0])
        axes = self.axes(node.input[0])
        if len(node.input) > 1 and node.input[1]:
            where = self._ints(node.input[1], "axes")
        else:
            where = attrs.get("axes")
        if where is None:
            shape = self.shapes.get(node.input[0]) or ()
            where = [i for i, d in enumerate(shape) if d == 1]
        for a in sorted((w % len(axes) for w in where), reverse=True):
            dim = axes.pop(a)
            if dim is None:
                continue
            if dim == 0:
                raise Unsupported("squeezing the batch dim")
            ref = self.emit_on(node, "Squeeze", {"dim": dim}, ref, suffix="squeeze")
            axes = [d if d is None or d < dim else d - 1 for d in axes]
        self.set_lazy(node.output[0], ref, axes)

    def lazy_reshape(self, node) -> bool:
        """A Reshape of a lazily held value that drops its size-1 axes and merges neighbouring
        axes that are neighbouring dims of the torchloom tensor (a bidirectional layer's
        directions): a Reshape node only for the merge, the batch wherever it is."""
        axes = self.layout.get(node.input[0])
        if axes is None:
            return False
        src = self.shapes.get(node.input[0]) or ()
        out = self.shapes.get(node.output[0]) or ()
        kept = [(d, a) for d, a in zip(src, axes, strict=False) if a is not None]
        if len(src) != len(axes) or not out:
            return False
        groups = _merge(kept, out)
        if groups is None:
            return False
        ref = self.values[node.input[0]]
        by_dim = sorted(groups, key=lambda g: g[0][1])
        if any(len(g) > 1 for g in groups):
            sizes = [int(np.prod([d for d, _ in g])) for g in by_dim if g[0][1] != 0]
            ref = self.emit_on(node, "Reshape", {"shape": sizes}, ref, suffix="merge")
        self.set_lazy(node.output[0], ref, [by_dim.index(g) for g in groups])
        return True

    # --- ops on one mapped dim -----------------------------------------------------------

    def _op_Slice(self, node, attrs) -> None:
        ref = self.tensor_raw(node.input[0])
        axes = self.axes(node.input[0])
        starts = self._ints(node.input[1], "starts")
        ends = self._ints(node.input[2], "ends")
        which = self._ints(node.input[3], "axes") if len(node.input) > 3 and node.input[3] else None
        steps = (
            self._ints(node.input[4], "steps") if len(node.input) > 4 and node.input[4] else None
        )
        which = which or list(range(len(starts)))
        steps = steps or [1] * len(starts)
        for a, start, end, step in zip(which, starts, ends, steps, strict=True):
            dim = axes[a % len(axes)]
            whole = start == 0 and end >= BIG and step == 1
            if whole:
                continue
            if step < 1:
                raise Unsupported(f"step {step}")
            if dim is None or dim == 0:
                raise Unsupported("slicing the batch dim or an added size-1 dim")
            params = {
                "dim": dim,
                "start": start or None,
                "end": None if end >= BIG else end,
                "step": step,
            }
            ref = self.emit_on(node, "Slice", params, ref, suffix="slice")
        self.set_lazy(node.output[0], ref, axes)

    def _op_Gather(self, node, attrs) -> None:
        indices = self.const(node.input[1])
        table = self.const(node.input[0])
        if table is not None:
            self.embedding(node, table, attrs)
            return
        if indices is None:
            raise Unsupported("indices that are not constants")
        ref = self.tensor_raw(node.input[0])
        axes = self.axes(node.input[0])
        a = attrs.get("axis", 0) % len(axes)
        dim = axes[a]
        if dim is None or dim == 0:
            raise Unsupported("gathering along the batch dim or an added size-1 dim")
        flat = [int(i) for i in np.asarray(indices).reshape(-1)]
        if np.asarray(indices).ndim == 0:
            ref = self.emit_on(node, "Select", {"dim": dim, "index": flat[0]}, ref)
            axes.pop(a)
            axes = [d if d is None or d < dim else d - 1 for d in axes]
        elif (
            np.asarray(indices).ndim == 1
            and flat
            and all(i >= 0 for i in flat)
            and (flat == list(range(flat[0], flat[-1] + 1)))
        ):
            params = {"dim": dim, "start": flat[0] or None, "end": flat[-1] + 1}
            ref = self.emit_on(node, "Slice", params, ref)
        else:
            raise Unsupported("indices that are not one index or a contiguous range")
        self.set_lazy(node.output[0], ref, axes)

    def embedding(self, node, table: np.ndarray, attrs) -> None:
        if table.ndim != 2 or attrs.get("axis", 0) != 0:
            raise Unsupported("a table that is not (num_embeddings, embedding_dim) on axis 0")
        params = {"num_embeddings": int(table.shape[0]), "embedding_dim": int(table.shape[1])}
        x = self.tensor(node.input[1])
        self.emit(node, "Embedding", params, [("in", x)], {"weight": table})

    # --- constants and zeros that exporters build for initial states ---------------------

    def _op_Expand(self, node, attrs) -> None:
        source = self.const(node.input[0])
        if source is not None and self.expand_learned(node, source):
            return  # a class token (onnx_tensors.py)
        if source is not None and not np.any(source):
            self.zeros.add(node.output[0])  # zeros of a batch-dependent shape: an initial state
            return
        src, out = self.shapes.get(node.input[0]), self.shapes.get(node.output[0])
        if source is None and src is not None and src == out:
            self.alias(node)
            self.layout.pop(node.output[0], None)
            if node.input[0] in self.layout:
                self.layout[node.output[0]] = list(self.layout[node.input[0]])
            return
        raise Unsupported("expanding to a new shape (only a (1, ...) initializer to the batch)")

    def _op_ConstantOfShape(self, node, attrs) -> None:
        value = attrs.get("value")
        if value is not None and np.any(_array(value)):
            raise Unsupported("a fill value other than 0")
        self.zeros.add(node.output[0])


def _merge(kept: list, out: tuple) -> list | None:
    """`kept` ((size, torchloom dim) per axis) grouped into the axes of `out`, each group a run
    of consecutive torchloom dims, the batch alone; an unknown size only last, taking the rest.
    None when the reshape is anything else."""
    groups, i = [], 0
    for n, size in enumerate(out):
        if not _known(size):
            if n != len(out) - 1 or i >= len(kept):
                return None
            group = kept[i:]
        elif isinstance(size, str):  # the batch symbol: exactly that axis
            if i >= len(kept) or kept[i][0] != size:
                return None
            group = kept[i : i + 1]
        else:
            group, product = [], 1
            while i + len(group) < len(kept) and product < size:
                entry = kept[i + len(group)]
                if not isinstance(entry[0], int):
                    return None
                group.append(entry)
                product *= entry[0]
            if product != size or not group:
                return None
        dims = [a for _, a in group]
        if dims != list(range(dims[0], dims[0] + len(dims))) or (0 in dims and len(dims) > 1):
            return None
        if len(group) > 1 and not all(isinstance(d, int) for d, _ in group):
            return None
        groups.append(group)
        i += len(group)
    return groups if i == len(kept) else None


def _known(d) -> bool:
    return isinstance(d, int) or (isinstance(d, str) and not d.startswith("unk__"))


def _array(tensor):
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)
