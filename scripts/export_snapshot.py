"""Write the contents of code.zip for every example and the special cases the export tests cover
(fp16, bf16, warm start, custom loss, frozen node, step and chained schedulers, plateau, thread
counts, generated data shipped as data.npz) into a folder, one subfolder per case.

A restructuring of the exports must leave these files byte-identical: run it with the code
before and after, from each checkout, and compare the two folders.

    cd /path/to/before && PYTHONPATH=$PWD .venv/bin/python scripts/export_snapshot.py /tmp/before
    cd /path/to/after && PYTHONPATH=$PWD .venv/bin/python scripts/export_snapshot.py /tmp/after
    diff -r /tmp/before /tmp/after

The runs are fabricated (seeded initial weights, no training: train.py and the README do not
depend on the trained values) and exported through the HTTP route, as the tests do.
"""

from __future__ import annotations

import copy
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

from safetensors.torch import save_file

from tests.helpers import add, edge, find_node, mlp, node, set_params
from tests.run_folders import fabricated_run
from tests.server_app import AUTH, make_app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def _training_id(document: dict) -> str:
    return next(n["id"] for n in document["nodes"] if n["type"] == "Training")


def cases() -> dict[str, tuple[dict, dict]]:
    """name → (document, options: warm (initial weights), threads (the recorded count))."""
    out = {path.stem: (_example(path.stem), {}) for path in sorted(EXAMPLES.glob("*.json"))}
    for precision in ("fp16", "bf16"):
        document = _example("digits_mlp")
        set_params(document, _training_id(document), precision=precision)
        out[f"mlp_{precision}"] = (document, {})
    out["warm_start"] = (_example("digits_cnn"), {"warm": True})
    out["threads3"] = (_example("diabetes_regression"), {"threads": 3})
    out["threads1"] = (_example("digits_mlp"), {"threads": 1})
    custom = {"code": "return F.cross_entropy(input, target)"}
    out["custom_loss"] = (mlp(loss="CustomLoss", loss_params=custom), {})
    chained = mlp(training={"epochs": 4})
    add(
        chained,
        node("warm", "LinearLR", {"total_iters": 2}),
        node("cos", "CosineAnnealingLR", {"interval": "step"}),
        node("seq", "SequentialLR", {"milestone": 3, "interval": "step"}),
        edge("opt", "warm", "optimizer", "optimizer"),
        edge("opt", "cos", "optimizer", "optimizer"),
        edge("warm", "seq", "scheduler", "first"),
        edge("cos", "seq", "scheduler", "then"),
    )
    out["sequential_step"] = (chained, {})
    out["one_cycle"] = (mlp(scheduler="OneCycleLR", training={"epochs": 3}), {})
    out["plateau"] = (mlp(scheduler="ReduceLROnPlateau"), {})
    moons = mlp(training={"epochs": 2})
    find_node(moons, "data")["params"] = {"source": "moons", "samples": 300}
    set_params(moons, "fc2", out_features=2)
    out["moons_npz"] = (moons, {})
    frozen = mlp()
    find_node(frozen, "fc1")["trainable"] = False
    out["frozen"] = (frozen, {})
    return out


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    app = make_app(Path(tempfile.mkdtemp()), allow_custom_code=True)
    for i, (name, (document, options)) in enumerate(sorted(cases().items()), 1):
        run_id = f"{i:016x}"
        run_folder, _, model = fabricated_run(
            app, run_id, copy.deepcopy(document), allow_custom_code=True
        )
        if options.get("warm"):
            save_file(dict(model.state_dict()), str(run_folder / "initial.safetensors"))
        if options.get("threads"):
            environment = {"cpu_threads": options["threads"]}
            (run_folder / "environment.json").write_text(json.dumps(environment))
        r = app.test_client().get(f"/api/runs/{run_id}/export/code.zip", headers=AUTH)
        if r.status_code != 200:
            raise SystemExit(f"{name}: {r.status_code} {r.get_data(as_text=True)}")
        archive = zipfile.ZipFile(io.BytesIO(r.data))
        (folder / name).mkdir(exist_ok=True)
        for member in archive.namelist():
            (folder / name / member).write_bytes(archive.read(member))
        print(name, sorted(archive.namelist()))


if __name__ == "__main__":  # the analysis pool's processes import this module: run only here
    main(Path(sys.argv[1]))
