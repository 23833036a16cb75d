"""Reading an ONNX file for import-onnx: checked, shapes inferred, and external data read only
from files inside the model's own folder (a model must not make the importer read elsewhere)."""

from __future__ import annotations

from pathlib import Path

from .graph import ImportFailed


def load(path: Path):
    import onnx

    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ImportFailed(f"{path} is not an ONNX model: {exc}") from None
    _load_external_data(model, path.resolve().parent)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportFailed(f"{path} fails onnx.checker: {first[:300]}") from None
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:
        return model


def _load_external_data(model, folder: Path) -> None:
    """Tensors stored outside the .onnx file: only from files inside its own folder."""
    from onnx.external_data_helper import uses_external_data

    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or folder not in target.parents:
            raise ImportFailed(
                f"initializer {tensor.name}: its external data {location!r} is outside the "
                f"model's folder {folder}; refusing to read it"
            )
        if not target.is_file():
            raise ImportFailed(f"initializer {tensor.name}: external data {location} not found")
        offset, length = int(info.get("offset", 0)), int(info.get("length", 0) or 0)
        with open(target, "rb") as f:
            f.seek(offset)
            raw = f.read(length) if length else f.read()
        tensor.raw_data = raw
        del tensor.external_data[:]
        tensor.data_location = 0  # DEFAULT: the bytes are in the tensor now
