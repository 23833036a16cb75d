"""How close examples/gpt_mini.json gets to the exact loss floor of its data, trained through the
engine on the CPU.

    .venv/bin/python bench/gpt_quality.py                # the example's own settings
    .venv/bin/python bench/gpt_quality.py --epochs 20    # fewer epochs (the schedule follows)

The data (markov_text) is a seeded order-2 Markov chain; the least possible mean cross-entropy
per position over a window of T tokens is known exactly (server/engine/data/markov_text.py:
the first position has one character of context, the rest the entropy rate). The figure is the
final validation loss against that floor; the target is within 10 %. The unigram entropy (what
a model that ignores the context reaches at best) is printed for scale.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.engine.data.markov_text import chain  # noqa: E402
from server.engine.trainer import Trainer  # noqa: E402

TARGET = 1.10  # val loss / floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the example's")
    args = parser.parse_args()
    document = json.loads((ROOT / "examples" / "gpt_mini.json").read_text())
    data = next(n for n in document["nodes"] if n["type"] == "Dataset")["params"]
    source = chain(int(data.get("data_seed", 0)))
    floor = source.window_floor(int(data["seq_len"]))
    overrides = {"device": "cpu"}
    if args.epochs:
        overrides["epochs"] = args.epochs
    started = time.perf_counter()
    result = Trainer(document, overrides=overrides).run()
    seconds = time.perf_counter() - started
    if result.status != "finished":
        print(f"run {result.status}: {result.reason}")
        return 1
    last = result.history[-1]
    ratio = last["val_loss"] / floor
    print(f"epochs {len(result.history)}, {seconds:.0f} s on the CPU")
    print(f"entropy rate {source.entropy_rate():.4f} nats/char")
    print(f"unigram entropy {source.unigram_entropy():.4f}")
    print(f"loss floor (T={data['seq_len']}) {floor:.4f}")
    print(
        f"val loss {last['val_loss']:.4f} = {ratio:.3f} × floor "
        f"(target ≤ {TARGET:.2f}: {'PASS' if ratio <= TARGET else 'FAIL'}); "
        f"perplexity {last['val_perplexity']:.3f}, token accuracy {last['val_accuracy']:.3f}"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
