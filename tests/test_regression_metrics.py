"""One R² (issue 11, item 11): the engine's per-epoch figures, the playground's evaluation and
the exported train.py compute MAE, RMSE and R² with one class, and R² is scikit-learn's
r2_score default (the uniform average of per-column R²), zero-variance columns included."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from server.engine.metrics import TermMetrics
from server.engine.regression_metrics import RegressionMetrics
from server.exports.evaluate import _regression

CPU = torch.device("cpu")


def engine_figures(pred: torch.Tensor, target: torch.Tensor, batch: int = 7) -> dict:
    """The engine's validation figures, fed in batches as an epoch's validation is."""
    metrics = TermMetrics("regression", None, CPU)
    for start in range(0, len(target), batch):
        metrics.update(pred[start : start + batch], target[start : start + batch])
    return metrics.compute()


def playground_figures(pred: torch.Tensor, target: torch.Tensor) -> dict:
    run_model = SimpleNamespace(target_scaler=lambda: None)  # predictions already in data units
    return _regression(run_model, pred, target)


def sklearn_figures(pred: torch.Tensor, target: torch.Tensor) -> dict:
    y, p = target.double().reshape(len(target), -1).numpy(), pred.double().reshape(len(pred), -1)
    p = p.numpy()
    return {
        "mae": mean_absolute_error(y, p),
        "rmse": mean_squared_error(y, p) ** 0.5,
        "r2": r2_score(y, p),
    }


def two_targets(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """The issue's case: two target columns on very different scales. Pooling them into one
    column (the old engine and train.py) gave 0.9999; per column they are 0.9 and ~0.5."""
    g = torch.Generator().manual_seed(0)
    target = torch.stack(
        [torch.randn(n, generator=g), 1000 + 3 * torch.randn(n, generator=g)], dim=1
    ).float()
    noise = torch.randn(n, 2, generator=g) * torch.tensor([0.3, 2.1])
    return target + noise, target


def test_a_two_target_regressor_reports_scikit_learns_r2_everywhere():
    pred, target = two_targets()
    expected = sklearn_figures(pred, target)
    assert expected["r2"] < 0.8  # the pooled figure was above 0.999
    for figures in (engine_figures(pred, target), playground_figures(pred, target)):
        for name in ("mae", "rmse", "r2"):
            assert figures[name] == pytest.approx(expected[name], abs=1e-9), name


@pytest.mark.parametrize(
    "constant_prediction, expected_column_r2",
    [(2.5, 1.0), (2.75, 0.0)],  # predicted exactly → 1.0; otherwise 0.0 (sklearn force_finite)
)
def test_zero_variance_targets_behave_as_in_scikit_learn(constant_prediction, expected_column_r2):
    pred, target = two_targets(50)
    target[:, 0] = 2.5  # a constant column (2.5: its float mean is exact, sklearn gets 0 SS_tot)
    pred[:, 0] = constant_prediction
    expected = r2_score(target.double().numpy(), pred.double().numpy())
    per_column = r2_score(target.double().numpy(), pred.double().numpy(), multioutput="raw_values")
    assert per_column[0] == expected_column_r2
    assert engine_figures(pred, target)["r2"] == pytest.approx(expected, abs=1e-9)
    assert playground_figures(pred, target)["r2"] == pytest.approx(expected, abs=1e-9)
    # one constant target column alone: 1.0 or 0.0, not None in one place and 0.0 in another
    only = target[:, :1], pred[:, :1]
    assert engine_figures(only[1], only[0])["r2"] == expected_column_r2
    assert playground_figures(only[1], only[0])["r2"] == expected_column_r2


def test_one_column_many_shapes_and_a_large_offset():
    g = torch.Generator().manual_seed(1)
    # (N,) targets, and (N, 2, 3) targets: six columns
    for shape in ((300,), (300, 2, 3)):
        target = 1e6 + torch.randn(shape, generator=g, dtype=torch.float64)  # cancellation bait
        pred = target + 0.5 * torch.randn(shape, generator=g, dtype=torch.float64)
        expected = sklearn_figures(pred, target)
        figures = engine_figures(pred, target, batch=16)
        assert figures["r2"] == pytest.approx(expected["r2"], abs=1e-9), shape
        assert figures["rmse"] == pytest.approx(expected["rmse"], rel=1e-9)


def test_fewer_than_two_samples_give_no_r2():
    one = torch.tensor([[1.0, 2.0]])
    assert "r2" not in engine_figures(one + 1, one) and engine_figures(one + 1, one)["mae"] == 1
    assert playground_figures(one + 1, one)["r2"] is None
    assert RegressionMetrics().compute() == {}


def test_batches_change_nothing():
    pred, target = two_targets(97)
    whole = RegressionMetrics()
    whole.update(pred, target)
    for batch in (1, 5, 32):
        figures = engine_figures(pred, target, batch)
        for name, value in whole.compute().items():
            assert figures[name] == pytest.approx(value, abs=1e-12), (batch, name)
    assert np.isfinite(list(whole.compute().values())).all()
