"""ONNX convolutions, pools, normalizations and Clip as catalog layers, weights carried."""

from __future__ import annotations

from typing import Any

import numpy as np

from .lookup import Unsupported
from .onnx_norms import short_float


class LayerOps:
    """Mixed into the ONNX converter: needs const(), tensor(), emit(), shapes."""

    def _op_Conv(self, node, attrs) -> None:
        w = self.const(node.input[1])
        if w is None or w.ndim not in (3, 4, 5):
            raise Unsupported("a 1-D, 2-D or 3-D convolution with constant weights")
        dims = w.ndim - 2
        params = {
            "out_channels": int(w.shape[0]),
            "kernel_size": list(w.shape[2:]),
            "stride": attrs.get("strides", [1] * dims),
            "padding": _symmetric(attrs, dims),
            "dilation": attrs.get("dilations", [1] * dims),
            "groups": attrs.get("group", 1),
        }
        weights = {"weight": w}
        bias = self.const(node.input[2]) if len(node.input) > 2 else None
        if bias is None:
            params["bias"] = False
        else:
            weights["bias"] = bias
        x = self.tensor(node.input[0])
        self.emit(node, f"Conv{dims}d", params, [("in", x)], weights)

    def _op_ConvTranspose(self, node, attrs) -> None:
        w = self.const(node.input[1])
        if w is None or w.ndim not in (3, 4, 5):
            raise Unsupported("a 1-D, 2-D or 3-D transposed convolution with constant weights")
        if "output_shape" in attrs:
            raise Unsupported("an explicit output_shape")
        dims, groups = w.ndim - 2, attrs.get("group", 1)
        params = {
            "out_channels": int(w.shape[1]) * groups,  # ONNX and torch: (C_in, C_out/groups, k)
            "kernel_size": list(w.shape[2:]),
            "stride": attrs.get("strides", [1] * dims),
            "padding": _symmetric(attrs, dims),
            "output_padding": attrs.get("output_padding", [0] * dims),
            "dilation": attrs.get("dilations", [1] * dims),
            "groups": groups,
        }
        weights = {"weight": w}
        bias = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if bias is None:
            params["bias"] = False
        else:
            weights["bias"] = bias
        x = self.tensor(node.input[0])
        self.emit(node, f"ConvTranspose{dims}d", params, [("in", x)], weights)

    def _op_Clip(self, node, attrs) -> None:
        bounds = []
        for i, key in ((1, "min"), (2, "max")):
            name = node.input[i] if len(node.input) > i else ""
            value = self.const(name) if name else attrs.get(key)
            if name and value is None:
                raise Unsupported(f"a {key} that is not a constant")
            bounds.append(None if value is None else float(np.asarray(value).reshape(-1)[0]))
        low, high = bounds
        x = [("in", self.tensor(node.input[0]))]
        if low == 0.0 and high == 6.0:
            self.emit(node, "ReLU6", {}, x)
        elif low == 0.0 and high is None:
            self.emit(node, "ReLU", {}, x)
        elif low is not None and high is not None:
            self.emit(node, "Hardtanh", {"min_val": low, "max_val": high}, x)
        else:
            raise Unsupported("a clip with one bound other than min 0")

    def _op_HardSigmoid(self, node, attrs) -> None:
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        if not (np.isclose(alpha, 1 / 6, rtol=0, atol=1e-7) and beta == 0.5):
            raise Unsupported(f"alpha {alpha:g}, beta {beta:g} (torch's Hardsigmoid: 1/6, 0.5)")
        self.emit(node, "Hardsigmoid", {}, [("in", self.tensor(node.input[0]))])

    def _pool(self, node, attrs, kind: str) -> None:
        kernel = attrs.get("kernel_shape")
        if not kernel or len(kernel) not in (1, 2, 3):
            raise Unsupported("a 1-D, 2-D or 3-D window")
        dims = len(kernel)
        params = {
            "kernel_size": kernel,
            "stride": attrs.get("strides", [1] * dims),
            "padding": _symmetric(attrs, dims),
            "ceil_mode": bool(attrs.get("ceil_mode", 0)),
        }
        if kind == "MaxPool":
            if attrs.get("storage_order", 0) or (len(node.output) > 1 and node.output[1]):
                raise Unsupported("indices output or storage order")
            params["dilation"] = attrs.get("dilations", [1] * dims)
        else:
            params["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
        self.emit(node, f"{kind}{dims}d", params, [("in", self.tensor(node.input[0]))])

    def _op_MaxPool(self, node, attrs) -> None:
        self._pool(node, attrs, "MaxPool")

    def _op_AveragePool(self, node, attrs) -> None:
        self._pool(node, attrs, "AvgPool")

    def _op_GlobalAveragePool(self, node, attrs) -> None:
        shape = self.shapes.get(node.input[0]) or ()
        if len(shape) not in (3, 4):
            raise Unsupported("an input that is not (B, C, L) or (B, C, H, W)")
        kind = f"AdaptiveAvgPool{len(shape) - 2}d"
        self.emit(node, kind, {"output_size": 1}, [("in", self.tensor(node.input[0]))])

    def _op_Split(self, node, attrs) -> None:
        """A split along a non-batch dim → a Split node (outputs out0, out1, ...)."""
        shape = self.shapes.get(node.input[0]) or ()
        axis = int(attrs.get("axis", 0))
        axis = axis + len(shape) if axis < 0 else axis
        if not shape or axis == 0 or axis >= len(shape):
            raise Unsupported(f"a split along dim {axis} (the batch, or out of range)")
        sizes = attrs.get("split")
        if sizes is None and len(node.input) > 1 and node.input[1]:
            found = self.const(node.input[1])
            if found is None:
                raise Unsupported("split sizes that are not constants")
            sizes = [int(v) for v in found.reshape(-1)]
        if sizes is None:
            size, parts = shape[axis], int(attrs.get("num_outputs", len(node.output)))
            if not isinstance(size, int):
                raise Unsupported(f"dim {axis} has no fixed size")
            step = -(-size // parts)  # ONNX: equal parts, the last one smaller
            sizes = [min(step, size - i * step) for i in range(parts)]
        x = self.tensor(node.input[0])
        made = self._add(node, "Split", {"split_sizes": sizes, "dim": axis}, [("in", x)], None)
        for i, name in enumerate(node.output):
            if name:
                self.values[name] = (made.id, f"out{i}")
                self.layout.pop(name, None)

    def _op_GlobalMaxPool(self, node, attrs) -> None:
        self._global_max(node, keepdims=True, axes=None)

    def _op_ReduceMax(self, node, attrs) -> None:
        """A max over every spatial dim, kept (torch's AdaptiveMaxPool to size 1)."""
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            found = self.const(node.input[1])
            if found is None:
                raise Unsupported("axes that are not constants")
            axes = [int(a) for a in found.reshape(-1)]
        self._global_max(node, keepdims=bool(attrs.get("keepdims", 1)), axes=axes)

    def _global_max(self, node, keepdims: bool, axes) -> None:
        rank = len(self.shapes.get(node.input[0]) or ())
        if rank not in (3, 4):
            raise Unsupported("an input that is not (B, C, L) or (B, C, H, W)")
        spatial = list(range(2, rank))
        if not keepdims or (axes is None and node.op_type == "ReduceMax"):
            raise Unsupported("a max that is not over the spatial dims, kept")
        if axes is not None and sorted(a % rank for a in axes) != spatial:
            raise Unsupported(f"a max over dims {list(axes)}, not the spatial dims {spatial}")
        kind = f"AdaptiveMaxPool{rank - 2}d"
        self.emit(node, kind, {"output_size": 1}, [("in", self.tensor(node.input[0]))])

    def _op_BatchNormalization(self, node, attrs) -> None:
        scale, bias, mean, var = (self.const(n) for n in node.input[1:5])
        if any(v is None for v in (scale, bias, mean, var)) or len(node.output) > 1:
            raise Unsupported("statistics that are not constants (training mode)")
        rank = len(self.shapes.get(node.input[0]) or ())
        kind = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d"}.get(rank)
        if kind is None:
            raise Unsupported(f"a rank-{rank} input")
        params = {
            "eps": short_float(attrs.get("epsilon", 1e-5)),  # ONNX holds it as a float32
            "momentum": round(1.0 - float(attrs.get("momentum", 0.9)), 6),
        }
        weights = {
            "weight": scale,
            "bias": bias,
            "running_mean": mean,
            "running_var": var,
            "num_batches_tracked": np.array(0, dtype=np.int64),
        }
        self.emit(node, kind, params, [("in", self.tensor(node.input[0]))], weights)

    def _op_LayerNormalization(self, node, attrs) -> None:
        rank = len(self.shapes.get(node.input[0]) or ())
        if attrs.get("axis", -1) not in (-1, rank - 1) or (len(node.output) > 1 and node.output[1]):
            raise Unsupported("normalization over more than the last dim")
        scale = self.const(node.input[1])
        bias = self.const(node.input[2]) if len(node.input) > 2 else None
        if scale is None:
            raise Unsupported("a scale that is not a constant")
        params: dict[str, Any] = {"eps": short_float(attrs.get("epsilon", 1e-5))}
        weights = {"weight": scale}
        if bias is None:
            params["bias"] = False
        else:
            weights["bias"] = bias
        self.emit(node, "LayerNorm", params, [("in", self.tensor(node.input[0]))], weights)


def _symmetric(attrs: dict, dims: int) -> list[int]:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise Unsupported(f"auto_pad {attrs['auto_pad']!r}")
    pads = list(attrs.get("pads", [0] * (2 * dims)))
    if pads[:dims] != pads[dims:]:
        raise Unsupported(f"asymmetric padding {pads}")
    return pads[:dims]
