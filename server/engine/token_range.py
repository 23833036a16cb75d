"""Token ids against the Embeddings that look them up, checked once when a run loads its data
(not per step): an id with no row would otherwise stop the run mid-epoch with an IndexError,
or a device-side assert on CUDA that names nothing. The compiler catches a known vocab_size
that is too large; this catches the ids themselves (a source whose vocabulary is not declared,
a validation file with ids the training file lacks)."""

from __future__ import annotations

import torch

from .run_document import RunFailed


def embeddings_on_data(analysis) -> list[tuple[str, int]]:
    """(display name, num_embeddings) of each top-level Embedding fed the Dataset's x."""
    top, data = analysis.top, analysis.data_node
    if top is None or data is None:
        return []
    out = []
    for r in analysis.model_nodes():
        if r.spec.type != "Embedding":
            continue
        edges = top.scope.incoming[r.node.id].get("in", [])
        if any(e.source == data and e.source_port == "x" for e in edges):
            out.append((r.node.display, int(r.params["num_embeddings"])))
    return out


def check_token_ids(analysis, splits: dict[str, torch.Tensor], batch_size: int) -> None:
    """RunFailed("data_error") naming the split, sample, batch and id when an Embedding fed
    the data has no row for one of its ids. `splits`: {"training": x_train, ...}."""
    tables = embeddings_on_data(analysis)
    if not tables:
        return
    name, rows = min(tables, key=lambda t: t[1])
    for split, x in splits.items():
        if x.numel() == 0 or x.is_floating_point():
            continue
        per_sample = x.reshape(len(x), -1).amax(dim=1)
        bad = (per_sample >= rows).nonzero()
        if len(bad) == 0:
            continue
        i = int(bad[0, 0])
        raise RunFailed(
            "data_error",
            f"the {split} split's batch {i // batch_size} (sample {i}, before shuffling) holds "
            f"token id "
            f"{int(per_sample[i])}, but {name} has num_embeddings {rows} (ids 0..{rows - 1}); "
            f"{len(bad)} samples hold ids that large — set num_embeddings to at least "
            f"{int(per_sample.max()) + 1}",
        )
