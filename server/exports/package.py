"""code.zip: the run's model.py (the exact bytes it trained), graph.json, preprocess.json, a
README (readme.py), a standalone train.py (train_py/), for generated or uploaded data, the
data itself (data.npz), and for a language-model run sample.py with what it reads (sample_py/).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch

from graph_compiler.analysis import Analysis

from ..engine.data.contain import without_paths
from ..errors import ApiError
from .artifacts import RunFiles, load_run_data
from .readme import generate_readme
from .run_facts import INITIAL_FILE, RUN_INITIAL, SKLEARN, dataset_params
from .train_py import generate_train_py

__all__ = ["build_zip", "generate_readme", "generate_train_py"]

DATA_LIMIT = 50 * 2**20  # data.npz is included below this size (uncompressed bytes)


def build_zip(files: RunFiles, analysis: Analysis, interface, class_name: str, datasets_root: Path):
    """The archive's bytes."""
    params = dataset_params(files.document)
    source = params.get("source")
    data_note, data_arrays = "", None
    if source not in SKLEARN:
        loaded = load_run_data(files.document, datasets_root)
        arrays = {"x": loaded.x.numpy(), "y": loaded.y.numpy()}
        if loaded.val is not None:
            arrays["x_val"], arrays["y_val"] = loaded.val[0].numpy(), loaded.val[1].numpy()
        size = sum(a.nbytes for a in arrays.values())
        if size <= DATA_LIMIT:
            data_arrays = arrays
        else:
            data_note = (
                f"The data ({size / 2**20:.0f} MB) is larger than the {DATA_LIMIT // 2**20} MB "
                "that an export includes: save it as data.npz (see train.py's load_data)."
            )
    initial = _initial_weights(files)
    train_py = generate_train_py(
        files, analysis, interface, class_name, data_arrays is not None, initial is not None
    )
    sample = _sample_files(files, analysis, interface, class_name)
    readme = generate_readme(
        files, analysis, interface, class_name, data_arrays, data_note, sample=bool(sample)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.py", files.source.encode("utf-8"))
        # as it ran, less the stored files' server paths (train.py reads data.npz)
        archive.writestr("graph.json", json.dumps(without_paths(files.document), indent=2) + "\n")
        archive.writestr("preprocess.json", (files.folder / "preprocess.json").read_bytes())
        archive.writestr("train.py", train_py)
        archive.writestr("README.md", readme)
        if initial is not None:
            archive.writestr(INITIAL_FILE, initial)
        for name, data in sample.items():
            archive.writestr(name, data)
        if data_arrays is not None:
            npz = io.BytesIO()
            np.savez(npz, **data_arrays)
            archive.writestr("data.npz", npz.getvalue())
    return buffer.getvalue()


def _sample_files(files: RunFiles, analysis: Analysis, interface, class_name: str):
    """sample.py and its files for a language-model run with a tokenizer; nothing otherwise."""
    if analysis.data is None or analysis.data.task != "language_model":
        return {}
    from ..engine.generate import GenerationError
    from .language_model import language_model_facts
    from .sample_py import sample_files

    try:
        facts = language_model_facts(files, analysis, interface)
    except GenerationError:  # e.g. no tokenizer.json: nothing sample.py could decode with
        return {}
    return sample_files(files, facts, class_name)


def _initial_weights(files: RunFiles) -> bytes | None:
    """The weights a warm-started run began from, as a torch.save'd state_dict (train.py needs
    only torch to read it), or None."""
    path = files.folder / RUN_INITIAL
    if not path.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ApiError(
            409, "bad_weights", f"the run's initial weights cannot be read: {exc}"
        ) from None
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()
