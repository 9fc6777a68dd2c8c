"""Block-wise validation metrics equal the metrics over all rows at once (no cluster needed)."""

import itertools

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)

from scaleml.train._scoring import (
    add_statistics,
    available_metrics,
    block_statistics,
    improved,
    metrics_from_statistics,
)


def _blocks(n_rows: int, sizes: list[int]) -> list[slice]:
    edges = np.cumsum([0, *sizes])
    assert edges[-1] == n_rows
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def test_classifier_metrics_add_up_over_uneven_blocks() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 4))
    y = (x[:, 0] + 0.5 * rng.standard_normal(1000) > 0).astype(int)
    model = SGDClassifier(loss="log_loss", random_state=0).fit(x, y)
    parts = [block_statistics(model, x[s], y[s]) for s in _blocks(1000, [100, 450, 3, 447])]
    metrics = metrics_from_statistics(add_statistics(parts))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, model.predict(x)))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, model.predict_proba(x)))


def test_regressor_metrics_add_up_over_uneven_blocks() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((900, 3))
    y = x @ [1.0, -2.0, 0.5] + 3.0 + rng.standard_normal(900)
    model = SGDRegressor(random_state=0).fit(x, y)
    parts = [block_statistics(model, x[s], y[s]) for s in _blocks(900, [500, 1, 399])]
    metrics = metrics_from_statistics(add_statistics(parts))
    predicted = model.predict(x)
    assert metrics["r2"] == pytest.approx(r2_score(y, predicted))
    assert metrics["mse"] == pytest.approx(mean_squared_error(y, predicted))
    assert metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, predicted)))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, predicted))


def test_clusterer_inertia_is_per_row() -> None:
    x = np.random.default_rng(2).standard_normal((600, 2))
    model = MiniBatchKMeans(n_clusters=3, random_state=0, n_init=1).fit(x)
    parts = [block_statistics(model, x[s], None) for s in _blocks(600, [200, 400])]
    assert metrics_from_statistics(add_statistics(parts))["inertia"] == pytest.approx(
        -model.score(x) / 600
    )


def test_metrics_offered_depend_on_the_estimator() -> None:
    assert available_metrics(SGDClassifier()) == ["accuracy"]  # hinge loss: no probabilities
    assert available_metrics(SGDClassifier(loss="log_loss")) == ["accuracy", "log_loss"]
    assert available_metrics(SGDRegressor())[0] == "r2"


def test_improvement_respects_direction_and_tolerance() -> None:
    assert improved(0.80, None, "accuracy", 0.0)
    assert improved(0.81, 0.80, "accuracy", 0.005)
    assert not improved(0.801, 0.80, "accuracy", 0.005)
    assert improved(0.30, 0.35, "log_loss", 0.01)
    assert not improved(0.36, 0.35, "log_loss", 0.0)
