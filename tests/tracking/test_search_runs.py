"""Tracked searches: a parent MLflow run per search, a nested run per trial, none left RUNNING."""

from __future__ import annotations

import time
import warnings
from collections.abc import Hashable
from typing import Any

import mlflow
import numpy as np
import pytest
from dask_ml.datasets import make_classification
from dask_ml.model_selection import GridSearchCV, RandomizedSearchCV
from distributed import Client
from mlflow import MlflowClient
from mlflow.entities import Run
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import MultinomialNB

from scaleml.config import Settings
from scaleml.data import Dataset
from scaleml.errors import SearchSpaceError
from scaleml.search import (
    IncrementalSearchCV,
    make_search,
    observe,
    parse_space,
)
from scaleml.tracking import Tracker, search_and_log

SPACE = {
    "alpha": {"logspace": {"start": -6, "stop": 1, "num": 50}},
    "average": [True, False],
}
PARAMS = parse_space(SPACE)


@pytest.fixture(scope="module")
def xy() -> tuple[Any, Any]:
    """12,000 rows x 10 features in 6 blocks."""
    return make_classification(
        n_samples=12_000, n_features=10, n_informative=5, chunks=2_000, random_state=3
    )


def _sgd() -> SGDClassifier:
    return SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)


def _all_runs(tracker: Tracker) -> list[Run]:
    return MlflowClient(tracker.tracking_uri).search_runs([tracker.experiment_id], max_results=500)


def _runs(tracker: Tracker) -> tuple[Run, list[Run]]:
    """The search's parent run and its nested runs."""
    runs = _all_runs(tracker)
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1
    return parent, children


def test_hyperband_gets_a_parent_run_and_a_nested_run_per_model(
    client: Client,
    any_store_settings: Settings,
    xy: tuple[Any, Any],
    capfd: pytest.CaptureFixture,
) -> None:
    settings = any_store_settings
    tracker = Tracker(settings)
    seen: list[dict[str, Any]] = []
    mine: list[Hashable] = []
    search = make_search("hyperband", _sgd(), SPACE, max_iter=9, random_state=0)
    observe(search, on_record=lambda r: mine.append(r["model_id"]))  # the user's own observer
    tracked = search_and_log(
        search,
        *xy,
        tracker=tracker,
        client=client,
        fit_params={"classes": [0, 1]},
        on_record=seen.append,
    )
    store = MlflowClient(tracker.tracking_uri)
    parent, trials = _runs(tracker)
    history = search.model_history_
    assert tracked.run_id == parent.info.run_id and tracked.search is search
    assert len(trials) == len(history) == search.metadata["n_models"]
    assert len(seen) == len(search.history_)  # the user's callback saw every record
    assert len(mine) == len(search.history_)  # and so did the observer attached before
    assert {r.info.status for r in [parent, *trials]} == {"FINISHED"}

    # The parent: search, space, best score and parameters, total calls, wall time.
    params, metrics = parent.data.params, parent.data.metrics
    assert params["search"] == "scaleml.search._hyperband.HyperbandSearchCV"
    assert params["search.max_iter"] == "9" and params["estimator.penalty"] == "elasticnet"
    assert params["space.alpha"] == "list[50] 1e-06 .. 10"
    assert params["space.average"] == "[True, False]"
    assert metrics["best_score"] == search.best_score_ == tracked.best_score
    assert params["best.alpha"] == str(search.best_params_["alpha"])
    assert tracked.best_params == search.best_params_
    calls = {k: records[-1]["partial_fit_calls"] for k, records in history.items()}
    assert (
        metrics["partial_fit_calls"] == sum(calls.values()) == search.metadata_["partial_fit_calls"]
    )
    assert metrics["n_models"] == len(history)
    assert metrics["wall_time_s"] > 0
    best_id = search.cv_results_["model_id"][search.best_index_]
    assert parent.data.tags["scaleml.best_run_id"] == tracked.trial_run_ids[best_id]

    # Each trial: its parameters, its score after every call as a step metric, stopped early?
    by_model = {r.data.tags["scaleml.model_id"]: r for r in trials}
    assert set(by_model) == set(map(str, history)) == set(map(str, tracked.trial_run_ids))
    stopped_count = 0
    for model_id, records in history.items():
        run = by_model[str(model_id)]
        assert tracked.trial_run_ids[model_id] == run.info.run_id
        assert run.data.params["alpha"] == str(records[0]["params"]["alpha"])
        steps = store.get_metric_history(run.info.run_id, "score")
        assert [(m.step, m.value) for m in sorted(steps, key=lambda m: m.step)] == [
            (r["partial_fit_calls"], r["score"]) for r in records
        ]
        bracket = records[0]["bracket"]
        most = max(calls[k] for k, rs in history.items() if rs[0]["bracket"] == bracket)
        stopped = calls[model_id] < most
        stopped_count += stopped
        assert run.data.tags["scaleml.stopped_early"] == str(stopped).lower()
        assert run.data.metrics["stopped_early"] == int(stopped)
        assert run.data.tags["scaleml.restarted"] == "false"
        assert run.data.tags["scaleml.bracket"] == str(bracket)
        assert run.data.metrics["partial_fit_calls"] == calls[model_id]
    assert 0 < stopped_count < len(history)
    assert metrics["n_stopped_early"] == stopped_count

    # The best model, with a signature, in the parent run.
    info = mlflow.models.get_model_info(tracked.model_uri)
    assert info.signature is not None and info.saved_input_example_info is not None

    # MLflow printed no "View run ... / View experiment ..." line per run (HTTP store).
    assert "View run" not in capfd.readouterr().out

    # The user's observer stays attached after the tracked fit; the tracking one does not.
    n_seen = len(seen)
    search.set_params(max_iter=3).fit(*xy, classes=[0, 1])
    assert len(mine) == n_seen + len(search.history_) and len(seen) == n_seen
    assert len(store.search_runs([tracker.experiment_id], max_results=500)) == 1 + len(trials)


def test_dataset_search_registers_a_model_that_loads_and_predicts(
    client: Client, any_store_settings: Settings, classification: Dataset
) -> None:
    settings = any_store_settings
    tracker = Tracker(settings)
    name = f"search-{tracker.experiment_name}"
    search = IncrementalSearchCV(
        _sgd(), PARAMS, n_initial_parameters=3, max_iter=4, random_state=0, decay_rate=None
    )
    tracked = search_and_log(
        search,
        classification,
        tracker=tracker,
        client=client,
        register_as=name,
        dataset=classification,  # as the coordinator passes it: recorded once
    )
    assert tracked.registered_version == "1"
    parent, trials = _runs(tracker)
    assert len(trials) == 3 and {r.info.status for r in trials} == {"FINISHED"}
    assert parent.data.params["dataset.fingerprint"] == classification.fingerprint
    assert parent.data.metrics["partial_fit_calls"] == 12
    [dataset_input] = parent.inputs.dataset_inputs
    assert dataset_input.dataset.digest == classification.fingerprint[:36]

    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    example = classification.input_example(20)
    np.testing.assert_array_equal(served.predict(example), search.best_estimator_.predict(example))


@pytest.mark.parametrize(
    ("stop", "status"),
    [(RuntimeError("cancelled by user"), "FAILED"), (KeyboardInterrupt(), "KILLED")],
)
def test_a_search_stopped_mid_way_ends_every_run(
    client: Client, settings: Settings, xy: tuple[Any, Any], stop: BaseException, status: str
) -> None:
    tracker = Tracker(settings)
    seen: list[dict[str, Any]] = []

    def cancel(record: dict[str, Any]) -> None:
        seen.append(record)
        if len(seen) == 6:
            # The trial runs are created by a background thread; a cancel drops the ones still
            # queued, so wait until all four exist to check that each of them is ended.
            deadline = time.monotonic() + 60
            while len(_all_runs(tracker)) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            raise stop

    search = IncrementalSearchCV(
        _sgd(), PARAMS, n_initial_parameters=4, max_iter=20, random_state=0, decay_rate=None
    )
    with pytest.raises(type(stop)):
        search_and_log(search, *xy, tracker=tracker, client=client, on_record=cancel)
    parent, trials = _runs(tracker)
    assert parent.info.status == status
    assert len(trials) == 4
    assert {r.info.status for r in trials} == {status}
    if status == "FAILED":
        assert parent.data.tags["scaleml.error"] == "RuntimeError: cancelled by user"


def test_a_worker_error_fails_the_parent_and_every_trial(
    client: Client, settings: Settings, xy: tuple[Any, Any]
) -> None:
    tracker = Tracker(settings)
    search = IncrementalSearchCV(
        MultinomialNB(), {"alpha": [0.1, 1.0]}, n_initial_parameters=2, max_iter=3, decay_rate=None
    )
    with pytest.raises(ValueError, match="Negative values"):
        search_and_log(search, *xy, tracker=tracker, client=client)
    parent, trials = _runs(tracker)
    assert parent.info.status == "FAILED" and len(trials) == 2
    assert {r.info.status for r in trials} == {"FAILED"}


def test_grid_search_gets_a_nested_run_per_candidate(
    client: Client, any_store_settings: Settings, xy: tuple[Any, Any]
) -> None:
    settings = any_store_settings
    tracker = Tracker(settings)
    summaries: list[dict[str, Any]] = []
    search = GridSearchCV(
        LogisticRegression(), {"C": [0.001, 1.0], "fit_intercept": [True, False]}, cv=3
    )
    tracked = search_and_log(
        search, *xy, tracker=tracker, client=client, on_record=summaries.append
    )
    parent, trials = _runs(tracker)
    results = search.cv_results_
    assert len(trials) == len(results["params"]) == 4 == len(summaries)
    assert {r.info.status for r in [parent, *trials]} == {"FINISHED"}
    assert parent.data.params["search"].endswith("GridSearchCV")
    assert parent.data.params["space.C"] == "[0.001, 1.0]"
    assert parent.data.metrics["best_score"] == search.best_score_
    assert parent.data.metrics["n_candidates"] == 4
    for index, run_id in tracked.trial_run_ids.items():
        run = MlflowClient(tracker.tracking_uri).get_run(run_id)
        assert run.data.params["C"] == str(results["params"][index]["C"])
        assert run.data.metrics["mean_test_score"] == results["mean_test_score"][index]
        assert run.data.metrics["split2_test_score"] == results["split2_test_score"][index]
        assert run.data.metrics["rank_test_score"] == results["rank_test_score"][index]
        assert summaries[index]["mean_test_score"] == results["mean_test_score"][index]
    assert parent.data.tags["scaleml.best_run_id"] == tracked.trial_run_ids[search.best_index_]
    assert tracked.model_uri is not None


def test_random_search_on_a_dataset_reads_its_training_blocks(
    client: Client, settings: Settings, classification: Dataset
) -> None:
    tracker = Tracker(settings)
    search = make_search(
        "random",
        LogisticRegression(),
        {"C": {"distribution": "loguniform", "low": 1e-3, "high": 10}},
        n_iter=3,
        cv=2,
        random_state=0,
    )
    assert isinstance(search, RandomizedSearchCV)
    tracked = search_and_log(search, classification, tracker=tracker, client=client)
    parent, trials = _runs(tracker)
    assert len(trials) == 3 and {r.info.status for r in [parent, *trials]} == {"FINISHED"}
    assert parent.data.params["space.C"] == "loguniform(0.001, 10)"
    assert parent.data.params["dataset.n_rows"] == "60000"
    train_rows = 6_000 * len(classification.train_blocks)
    assert search.n_splits_ == 2 and train_rows == 48_000
    assert 0.5 < tracked.best_score <= 1.0
    served = mlflow.pyfunc.load_model(tracked.model_uri)
    example = classification.input_example(10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predicted = served.predict(example)
    assert not [w for w in caught if "feature names" in str(w.message)]
    np.testing.assert_array_equal(predicted, search.best_estimator_.predict(example))


@pytest.mark.timeout(180)  # dask-ml alone retries the failed fit task forever
@pytest.mark.parametrize("built_by", ["make_search", "dask-ml"])
def test_a_candidate_failing_at_fit_fails_the_search_at_once(
    client: Client, settings: Settings, xy: tuple[Any, Any], built_by: str
) -> None:
    """l1_ratio=0.5 is a valid value, but lbfgs cannot fit it: only the fit finds out."""
    tracker = Tracker(settings)
    space = {"l1_ratio": [0.0, 0.5]}
    if built_by == "make_search":
        search = make_search("grid", LogisticRegression(), space, cv=2)
    else:
        search = GridSearchCV(LogisticRegression(), space, cv=2)
    with pytest.raises(SearchSpaceError, match="failed to fit: ValueError: Solver lbfgs"):
        search_and_log(search, *xy, tracker=tracker, client=client)
    runs = MlflowClient(tracker.tracking_uri).search_runs([tracker.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]  # the parent; no trial had started
    assert "Solver lbfgs supports only" in runs[0].data.tags["scaleml.error"]


def test_a_refused_candidate_value_stops_the_search_before_any_run(
    client: Client, settings: Settings, xy: tuple[Any, Any]
) -> None:
    tracker = Tracker(settings)
    search = IncrementalSearchCV(_sgd(), {"penalty": ["l2", "l3"]}, max_iter=2, decay_rate=None)
    with pytest.raises(SearchSpaceError, match="parameter 'penalty': value 'l3' is refused"):
        search_and_log(search, *xy, tracker=tracker, client=client)
    assert MlflowClient(tracker.tracking_uri).search_runs([tracker.experiment_id]) == []
