"""Sample a continuation from the trained language model in this folder.

    python sample.py --prompt "To be" [--max-new-tokens 200] [--temperature 1] [--top-k 0]
                     [--seed 0]

Needs torch only (and the `tokenizers` package when the run used a BPE tokenizer). It reads
model.py, the trained weights (trained_state_dict.pt, loaded with weights_only=True),
tokenizer.json and sample.json (the model class, the context length it trained on, which output
holds the logits), and prints the continuation as it is sampled: for the same seed, the same
text as `torchloom generate` and the playground (sampling.py is the engine's own sampler).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # sampling.py and tokenizer.py lie beside this file

from sampling import (  # noqa: E402
    GenerationError,
    Sampler,
    SampleSettings,
    TextStream,
    sample_ids,
)
from tokenizer import Tokenizer, TokenizerError  # noqa: E402


def load_model(config: dict) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("model", HERE / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, config["class_name"])()
    state = torch.load(HERE / config["weights"], map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most likely")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = json.loads((HERE / "sample.json").read_text(encoding="utf-8"))
    settings = SampleSettings(args.max_new_tokens, args.temperature, args.top_k, args.seed)
    try:
        settings.checked()
        tokenizer = Tokenizer.load(HERE / "tokenizer.json")
        if not args.prompt:
            raise GenerationError("the prompt is empty: give at least one character to continue")
        ids = tokenizer.encode(args.prompt)
    except (GenerationError, TokenizerError) as exc:
        print(f"sample.py: {exc}", file=sys.stderr)
        return 1
    model = load_model(config)

    def logits_of(context: torch.Tensor) -> torch.Tensor:
        out = model(context)
        if isinstance(out, tuple | list):
            out = out[config["output"]]
        return out[0, -1]

    stream = TextStream(tokenizer)
    sampler = Sampler(settings)
    for token in sample_ids(logits_of, ids, sampler, config["block_size"], args.max_new_tokens):
        sys.stdout.write(stream.push(token))
        sys.stdout.flush()
    sys.stdout.write(stream.flush())
    if sys.stdout.isatty():
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
