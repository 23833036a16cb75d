"""The issue's quality targets for the vision examples, measured on the CPU: the U-Net's mean
IoU on shapes_segmentation (target >= 0.8) and ViT-tiny's accuracy on digits_images (target
>= 90 %). Each trains its example as shipped (the epochs in its Training node) and prints the
last epoch's validation figures and the wall time.

    PYTHONPATH=. .venv/bin/python bench/vision_quality.py [unet_segmentation|vit_tiny ...]
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import torch

from server.engine.trainer import Trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TARGETS = {"unet_segmentation": ("val_miou", 0.8), "vit_tiny": ("val_accuracy", 0.9)}


def measure(name: str) -> bool:
    doc = json.loads((EXAMPLES / f"{name}.json").read_text())
    start = time.perf_counter()
    result = Trainer(doc, overrides={"device": "cpu"}).run()
    seconds = time.perf_counter() - start
    if result.status != "finished":
        print(f"{name}: {result.status} ({result.reason})")
        return False
    key, target = TARGETS[name]
    last = result.history[-1]
    shown = ", ".join(
        f"{k} {v:.4f}" for k, v in last.items() if k.startswith("val_") and "/" not in k
    )
    ok = last[key] >= target
    print(
        f"{name}: {shown} after {len(result.history)} epochs, {seconds:.0f} s on "
        f"{torch.get_num_threads()} CPU threads — {key} target {target}: "
        f"{'met' if ok else 'MISSED'}"
    )
    return ok


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=UserWarning)
    names = sys.argv[1:] or list(TARGETS)
    sys.exit(0 if all([measure(n) for n in names]) else 1)
