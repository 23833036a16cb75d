"""GET /api/runs/<id>/evaluation: the run's model over its whole validation split — a confusion
matrix for a classifier, predicted-vs-true points for a regressor — agreeing with the metrics the
engine reported for the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from server.app import create_app
from server.config import ServerConfig
from server.engine.trainer import Trainer
from server.storage import runs as store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOKEN = "evaluation-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("evaluation")
    cfg = ServerConfig(data_dir=data_dir, token=TOKEN, start_runner=False, seed_examples=False)
    app = create_app(cfg)
    services = app.extensions["torchloom"]
    histories = {}
    for run_id, example in (
        ("00000000000c1a55", "digits_mlp"),
        ("000000000000d1ab", "diabetes_regression"),
        ("0000000000a07010", "digits_autoencoder"),
    ):
        document = json.loads((EXAMPLES / f"{example}.json").read_text())
        out_dir = services.data.run_dir(run_id)
        result = Trainer(
            document, run_id=run_id, out_dir=out_dir, overrides={"epochs": 2, "device": "cpu"}
        ).run()
        assert result.status == "finished", result.reason
        store.create(services.db, run_id, "p", 1, document, {}, str(out_dir))
        store.update_run(services.db, run_id, status="finished", checkpoint=result.checkpoint)
        histories[example] = result.history[-1]
    return app.test_client(), histories


def evaluation(client, run_id):
    return client.get(f"/api/runs/{run_id}/evaluation", headers=AUTH)


def test_a_classifier_gets_the_confusion_matrix_of_its_validation_split(env):
    client, histories = env
    r = evaluation(client, "00000000000c1a55")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    matrix = torch.tensor(body["confusion"])
    assert body["task"] == "classification" and matrix.shape == (10, 10)
    assert int(matrix.sum()) == body["samples"] > 0
    accuracy = float(matrix.diag().sum()) / body["samples"]
    assert body["accuracy"] == pytest.approx(accuracy)
    assert body["accuracy"] == pytest.approx(histories["digits_mlp"]["val_accuracy"], abs=1e-9)
    assert body["class_names"] == [str(i) for i in range(10)]
    recall = body["per_class_recall"]
    assert recall[3] == pytest.approx(float(matrix[3, 3]) / float(matrix[3].sum()))


def test_a_regressor_gets_points_and_the_engines_error_figures(env):
    client, histories = env
    body = evaluation(client, "000000000000d1ab").get_json()
    assert body["task"] == "regression"
    last = histories["diabetes_regression"]
    assert body["r2"] == pytest.approx(last["val_r2"], abs=1e-4)
    assert body["mae"] == pytest.approx(last["val_mae"], rel=1e-4)
    points = body["points"]
    n = body["samples"]
    assert len(points["true"]) == len(points["predicted"]) == len(points["index"]) == n
    # targets in the data's units (diabetes progression is 25..346), not standardized ones
    assert min(points["true"]) >= 20 and max(points["true"]) <= 350


def test_other_models_and_unknown_runs_get_clear_errors(env):
    client, _ = env
    r = evaluation(client, "0000000000a07010")
    assert r.status_code == 409
    assert r.get_json()["error"]["code"] == "no_evaluation"
    assert "reconstruction" in r.get_json()["error"]["message"]
    assert evaluation(client, "ffffffffffffffff").status_code == 404
