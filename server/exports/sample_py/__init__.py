"""code.zip's files for sampling from a language-model run: sample.py (the script in this
folder, real source), sampling.py and tokenizer.py (the engine's own modules, copied verbatim:
both are self-contained), tokenizer.json, sample.json (the run's facts) and the trained weights
as a torch.save'd state_dict (sample.py needs only torch to read it)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from ...engine import sampling
from ...engine.data import tokenizer
from ..artifacts import RunFiles, load_state_dict
from ..language_model import TOKENIZER_FILE, LanguageModelFacts

WEIGHTS_FILE = "trained_state_dict.pt"
SCRIPT = Path(__file__).with_name("sample.py")


def sample_files(files: RunFiles, facts: LanguageModelFacts, class_name: str) -> dict[str, bytes]:
    """{name in code.zip: bytes}."""
    config = {
        "class_name": class_name,
        "block_size": facts.block_size,
        "output": facts.output,
        "weights": WEIGHTS_FILE,
    }
    weights = io.BytesIO()
    torch.save(load_state_dict(files), weights)
    return {
        "sample.py": SCRIPT.read_bytes(),
        "sampling.py": Path(sampling.__file__).read_bytes(),
        "tokenizer.py": Path(tokenizer.__file__).read_bytes(),
        TOKENIZER_FILE: (files.folder / TOKENIZER_FILE).read_bytes(),
        "sample.json": (json.dumps(config, indent=2) + "\n").encode("utf-8"),
        WEIGHTS_FILE: weights.getvalue(),
    }
