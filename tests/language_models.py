"""Small language-model graphs on the markov_text source, shared by the sequence-loss, weight
tying and validation tests."""

from __future__ import annotations

from tests.helpers import document, edge, node, set_params

VOCAB = 22  # markov_text's alphabet


def lm_doc(
    *,
    seq_len: int = 16,
    head: int = VOCAB,
    loss: str = "CrossEntropyLoss",
    loss_params: dict | None = None,
    epochs: int = 2,
    samples: int = 300,
) -> dict:
    """markov_text → Embedding → Linear head (→ LogSoftmax for NLLLoss) → loss ← y."""
    nodes = [
        node("data", "Dataset", {"source": "markov_text", "samples": samples, "seq_len": seq_len}),
        node("emb", "Embedding", {"num_embeddings": VOCAB, "embedding_dim": 24}),
        node("head", "Linear", {"out_features": head}),
        node("loss", loss, dict(loss_params or {})),
        node("opt", "Adam", {"lr": 0.01}),
        node("train", "Training", {"epochs": epochs, "batch_size": 32, "device": "cpu"}),
    ]
    edges = [edge("data", "emb", "x"), edge("emb", "head")]
    last = "head"
    if loss == "NLLLoss":
        nodes.append(node("logsm", "LogSoftmax", {"dim": -1}))
        edges.append(edge("head", "logsm"))
        last = "logsm"
    edges += [
        edge(last, "loss", target_port="input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    return document(nodes, edges)


def tied_doc(**head) -> dict:
    """lm_doc with the head's weight tied to the token Embedding (plus any head params)."""
    doc = lm_doc(epochs=1, samples=120)
    return set_params(doc, "head", **{"tie_weight": "emb", **head})
