"""code.zip's README.md: the run's files, inference with the exported model, training again."""

from __future__ import annotations

from graph_compiler.analysis import Analysis

from .artifacts import RunFiles
from .run_facts import INITIAL_FILE, RUN_INITIAL, SKLEARN, dataset_params, recorded_threads


def generate_readme(
    files: RunFiles,
    a: Analysis,
    interface,
    class_name: str,
    data_arrays: dict | None,
    data_note: str,
    sample: bool = False,  # the zip holds sample.py (a language-model run)
) -> str:
    pre = files.preprocess
    norm = pre.get("normalizer") or {"kind": "none"}
    task = pre.get("task") or "classification"
    x_shape = list(a.data.x_shape)
    x_dtype = "torch.int64" if a.data.x_dtype == "int64" else "torch.float32"
    example_shape = ", ".join(str(d) for d in [1, *x_shape])
    lines = [
        f"# {files.name}",
        "",
        str(files.document.get("description") or "").strip(),
        "",
        f"Exported by torchloom from run `{files.run_id}` ({files.status}; weights from "
        f"{'the final model.safetensors' if files.weights_kind == 'safetensors' else 'its latest checkpoint'}).",  # noqa: E501
        "",
        "## Files",
        "",
        f"- `model.py`: the PyTorch module `{class_name}`, exactly the code the run trained.",
        "- `graph.json`: the graph document as it ran (overrides applied).",
        "- `preprocess.json`: the input normalization (`normalizer`: mean and std of the "
        "training split), the regression target scaling (`target_scaler`), `class_names`, "
        "`task`.",
        "- `train.py`: trains the model from scratch the way the run did "
        "(`python train.py --help`).",
    ]
    if (files.folder / RUN_INITIAL).is_file():
        lines.append(
            f"- `{INITIAL_FILE}`: the weights the run started from (uploaded into the project); "
            "train.py loads them after the seeded initialization."
        )
    if data_arrays is not None:
        names = ", ".join(f"`{k}` {list(v.shape)} {v.dtype}" for k, v in data_arrays.items())
        lines.append(f"- `data.npz`: the run's data ({names}).")
    elif data_note:
        lines.append(f"- {data_note}")
    if sample:
        lines += [
            "- `sample.py`: samples a continuation from the trained model "
            '(`python sample.py --prompt "..." [--max-new-tokens N] [--temperature T] '
            "[--top-k K] [--seed S]`; torch only, plus `tokenizers` for a BPE tokenizer); the "
            "same text as `torchloom generate` for the same seed. It reads `sampling.py`, "
            "`tokenizer.py`, `tokenizer.json` (the run's vocabulary), `sample.json` and "
            "`trained_state_dict.pt` (the trained weights).",
        ]
    lines += [
        "",
        "The weights are downloaded separately from the run's export menu: `model.safetensors`",
        "(GET /api/runs/<run>/export/model.safetensors) or `state_dict.pt` (a plain",
        "`torch.save` of the state_dict); the ONNX model is `model.onnx`.",
        "",
        "## Inference",
        "",
        f"The model takes `{', '.join(interface.inputs)}` of shape `(batch, "
        f"{', '.join(str(d) for d in x_shape)})` ({x_dtype}), "
        + (
            "standardized with the training statistics: `(x - mean) / std`, the arrays in "
            "`preprocess.json` (shaped to broadcast against a batch)."
            if norm.get("kind") != "none"
            else "as they are (no normalization)."
        ),
        "",
        "```python",
        "import json",
        "",
        "import torch",
        "from safetensors.torch import load_file  # or: torch.load('state_dict.pt', "
        "weights_only=True)",
        "",
        f"from model import {class_name}",
        "",
        'pre = json.load(open("preprocess.json"))',
        f"model = {class_name}()",
        'model.load_state_dict(load_file("model.safetensors"))',
        "model.eval()",
        "",
        f"x = torch.zeros({example_shape}, dtype={x_dtype})  # your raw input, batch first",
    ]
    if norm.get("kind") != "none":
        lines += [
            'mean = torch.tensor(pre["normalizer"]["mean"])',
            'std = torch.tensor(pre["normalizer"]["std"])',
            "x = (x - mean) / std",
        ]
    lines += [
        "with torch.no_grad():",
        f"    out = model({'x' if interface.inputs == ('x',) else '...'})",
    ]
    if len(interface.outputs) > 1:
        lines.append(f"# out is a tuple of {len(interface.outputs)} outputs")
    if task == "classification":
        lines += [
            "probabilities = torch.softmax(out if not isinstance(out, tuple) else out[0], dim=1)",
            'label = pre["class_names"][int(probabilities[0].argmax())]',
        ]
    elif pre.get("target_scaler"):
        lines += [
            "# the model predicts standardized targets: undo the scaling",
            'ts = pre["target_scaler"]',
            'y = (out if not isinstance(out, tuple) else out[0]) * torch.tensor(ts["std"]) '
            '+ torch.tensor(ts["mean"])',
        ]
    lines += [
        "```",
        "",
        "## Training again",
        "",
        "```",
        "pip install torch numpy" + (" scikit-learn" if uses_sklearn(files) else ""),
        "python train.py --epochs 1",
        "```",
        "",
        "train.py rebuilds the data, the seeded split, the standardization, the loss, the "
        "optimizer and the schedule with the run's parameters, and saves the trained "
        "state_dict (and its normalization statistics) at the end.",
        "",
    ]
    threads = recorded_threads(files)
    if threads is not None:
        lines += [
            f"On the CPU it trains with the run's {threads} thread{'s' if threads > 1 else ''} "
            "(`--threads` changes that): with another thread count, float sums round "
            "differently and the losses drift away from the run's within a few steps.",
            "",
        ]
    return "\n".join(lines)


def uses_sklearn(files: RunFiles) -> bool:
    return dataset_params(files.document).get("source") in SKLEARN
