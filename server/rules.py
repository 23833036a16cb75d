"""Rules the editor follows that the server defines, served with the catalog (GET /api/catalog,
under "rules") so that the TypeScript side never keeps a copy that can drift:

- replay_limit: the most events one `subscribe` reply replays (server/sockets.py); a reply
  that long may be truncated, and the client asks again from where it ends.
- monitored_metrics: the metric a run is ranked by, the first of these its epochs report, and
  whether higher is better (server/engine/checkpoint.py keeps the best checkpoint by it).
- ink_scale: per built-in image dataset, the raw value of full ink (sklearn's digits hold
  0..16), so that a drawing in the playground reaches the model in the dataset's units.
"""

from __future__ import annotations

from typing import Any

REPLAY_LIMIT = 100_000
INK_SCALE = {"digits": 16, "digits_images": 16}


def rules_json() -> dict[str, Any]:
    from server.engine.checkpoint import MONITORED

    return {
        "replay_limit": REPLAY_LIMIT,
        "monitored_metrics": [
            {"name": name, "higher_is_better": higher} for name, higher in MONITORED
        ],
        "ink_scale": dict(INK_SCALE),
    }
