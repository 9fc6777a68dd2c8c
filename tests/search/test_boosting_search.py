"""Grid/random search over boosting parameters, each candidate trained on the whole cluster,
tracked as one parent MLflow run with a nested run per candidate."""

from pathlib import Path

import mlflow
import numpy as np
import pytest
from distributed import Client
from mlflow import MlflowClient

from scaleml.config import Settings
from scaleml.data import Dataset, write_synthetic
from scaleml.errors import EstimatorSpecError, TrainingError
from scaleml.search._boosting import boosting_candidates, search_boosting
from scaleml.tracking import Tracker, search_boosting_and_log

XGB = {"estimator": "xgboost.dask.DaskXGBClassifier", "params": {"n_estimators": 60}}
LGBM = {"estimator": "lightgbm.DaskLGBMClassifier", "params": {"n_estimators": 60}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """40,000 rows x 8 features in 10 Parquet blocks of 4,000 (8 train, 2 validation)."""
    path = tmp_path_factory.mktemp("boosting-search") / "noisy"
    write_synthetic(path, rows=40_000, features=8, block_rows=4_000, random_state=5)
    return Dataset(str(path), target="target")


@pytest.mark.slow
def test_tracked_grid_search_picks_the_best_candidate_with_parent_and_nested_runs(
    client: Client, dataset: Dataset, any_store_settings: Settings
) -> None:
    settings = any_store_settings
    tracker = Tracker(settings)
    name = f"search-{tracker.experiment_name}"
    space = {"max_depth": [1, 4], "learning_rate": [0.05, 0.3]}
    tracked = search_boosting_and_log(
        XGB,
        space,
        dataset,
        tracker=tracker,
        client=client,
        method="grid",
        early_stopping_rounds=5,
        register_as=name,
    )
    search = tracked.search
    assert [c.params for c in search.candidates] == boosting_candidates(space, "grid")
    assert len(search.candidates) == 4
    scores = [c.score for c in search.candidates]
    assert search.scoring == "accuracy" and search.greater_is_better
    assert search.best_score == max(scores)
    assert search.best_params == search.candidates[int(np.argmax(scores))].params
    assert search.best_score > min(scores)  # the space holds clearly worse candidates
    assert search.best_score == search.best_candidate.result.scores["accuracy"]

    store = MlflowClient(settings.mlflow_tracking_uri)
    runs = store.search_runs([tracker.experiment_id])
    assert len(runs) == 5
    assert all(run.info.status == "FINISHED" for run in runs)
    parent = store.get_run(tracked.run_id)
    assert "mlflow.parentRunId" not in parent.data.tags
    assert parent.data.metrics["best_accuracy"] == search.best_score
    assert parent.data.metrics["n_candidates"] == 4
    assert parent.data.params["search.method"] == "grid"
    assert parent.data.tags["scaleml.best_run_id"] == tracked.candidate_run_ids[search.best_index]
    for candidate, run_id in zip(search.candidates, tracked.candidate_run_ids, strict=True):
        child = store.get_run(run_id)
        assert child.data.tags["mlflow.parentRunId"] == tracked.run_id
        assert child.data.params["max_depth"] == str(candidate.params["max_depth"])
        assert child.data.metrics["score"] == candidate.score
        history = sorted(store.get_metric_history(run_id, "val_logloss"), key=lambda m: m.step)
        assert [m.value for m in history] == candidate.result.history["logloss"]
        assert [m.step for m in history] == list(range(candidate.result.n_rounds))

    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    rows = dataset.read_block(dataset.validation_blocks[0])[dataset.features].head(300)
    np.testing.assert_array_equal(np.asarray(served.predict(rows)), search.best_model.predict(rows))


@pytest.mark.slow
def test_random_search_over_lightgbm_with_a_loss_as_scoring(
    client: Client, dataset: Dataset
) -> None:
    space = {"num_leaves": [4, 16, 64], "learning_rate": [0.05, 0.1, 0.3]}
    search = search_boosting(
        LGBM,
        space,
        dataset,
        method="random",
        n_iter=3,
        random_state=2,
        scoring="log_loss",
        client=client,
        early_stopping_rounds=5,
    )
    assert [c.params for c in search.candidates] == boosting_candidates(space, "random", 3, 2)
    assert not search.greater_is_better
    assert search.best_score == min(c.score for c in search.candidates)
    for candidate in search.candidates:
        history = candidate.result.history["binary_logloss"]
        assert len(history) == candidate.result.n_rounds
        best = candidate.result.best_iteration
        assert candidate.score == pytest.approx(history[best], rel=1e-6)


def test_candidates_are_reproducible_and_plain_values() -> None:
    space = {"max_depth": np.arange(1, 8), "learning_rate": [0.1, 0.2]}
    first = boosting_candidates({k: list(v) for k, v in space.items()}, "random", 5, 7)
    assert first == boosting_candidates({k: list(v) for k, v in space.items()}, "random", 5, 7)
    assert all(type(c["max_depth"]) is int for c in first)
    assert len(boosting_candidates({"max_depth": [1, 2, 3], "subsample": [0.5, 1.0]})) == 6


@pytest.mark.parametrize(
    ("space", "options", "error", "match"),
    [
        ({"max_depth": [1, 2]}, {"method": "bayes"}, TrainingError, "method"),
        ({}, {}, TrainingError, "param_space"),
        ({"max_depth": []}, {}, TrainingError, "empty list"),
        ({"max_depht": [1, 2]}, {}, EstimatorSpecError, "max_depht"),
        ({"n_estimators": [10, 0]}, {}, TrainingError, "'n_estimators'"),
        ({"learning_rate": [0.1]}, {"scoring": "r2"}, TrainingError, "scoring"),
        ({"learning_rate": [0.1]}, {"method": "random", "n_iter": 0}, TrainingError, "n_iter"),
    ],
)
def test_bad_searches_are_typed_errors_before_any_work(
    space: dict, options: dict, error: type, match: str, dataset: Dataset
) -> None:
    with pytest.raises(error, match=match):
        search_boosting(XGB, space, dataset, client=object(), **options)  # type: ignore[arg-type]


def test_a_failing_candidate_fails_its_run_and_the_parent_run(
    client: Client, regression_path: Path, settings: Settings
) -> None:
    # A classifier on a continuous target: the first candidate fails on the workers.
    tracker = Tracker(settings)
    continuous = Dataset(str(regression_path), target="target")
    with pytest.raises(ValueError, match="label must be discrete"):
        search_boosting_and_log(
            XGB, {"max_depth": [2, 3]}, continuous, tracker=tracker, client=client
        )
    runs = MlflowClient(settings.mlflow_tracking_uri).search_runs([tracker.experiment_id])
    assert sorted(run.info.status for run in runs) == ["FAILED", "FAILED"]
    (child,) = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    assert child.data.tags["scaleml.candidate"] == "0"
