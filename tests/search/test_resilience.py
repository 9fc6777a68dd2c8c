"""A worker process dies in the middle of a search: the search completes, with the same
results as an undisturbed run, and the records of the models that were hit say so. Tracked in
MLflow, every run still ends FINISHED and the restarted trials' runs say so."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dask_ml.datasets import make_classification
from distributed import Client, LocalCluster, get_task_stream
from mlflow import MlflowClient
from sklearn.linear_model import SGDClassifier

from scaleml.config import Settings
from scaleml.search import IncrementalSearchCV, observe
from scaleml.tracking import Tracker, search_and_log
from tests.search.conftest import PARAMS

TIMING = {"partial_fit_time", "score_time", "elapsed_wall_time"}


@pytest.fixture(scope="module")
def own_client() -> Iterator[Client]:
    """A cluster of its own (a worker of it is killed); its nanny restarts the worker."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def search(placement: str = "auto") -> IncrementalSearchCV:
    model = SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)
    return IncrementalSearchCV(
        model,
        PARAMS,
        n_initial_parameters=4,
        max_iter=25,
        random_state=0,
        decay_rate=None,
        placement=placement,
    )


def killer(client: Client, killed: list[str], after: int) -> Any:
    """An ``on_record`` callback that, after ``after`` records, kills (``SIGKILL``) a worker
    while it is running a partial_fit task: that task, and whatever model states only that
    worker held, are lost."""
    seen = 0

    def kill_a_training_worker(record: dict[str, Any]) -> None:
        nonlocal seen
        seen += 1
        if killed or seen < after:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            training = [
                worker
                for worker, keys in client.processing().items()
                if any(str(k).startswith("partial_fit-") for k in keys)
            ]
            if training:
                pid = client.run(os.getpid, workers=[training[0]])[training[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(training[0])
                return
            time.sleep(0.005)

    return kill_a_training_worker


def models_hit(client: Client, killed: list[str]) -> set[str]:
    """The partial_fit tasks the killed workers were running or held the only result of, as
    the scheduler's ``remove-worker`` events name them (what the search must have redone)."""
    return {
        str(key)
        for worker in killed
        for _, event in client.get_events(worker)
        if isinstance(event, dict) and event.get("action") == "remove-worker"
        for field in ("processing-tasks", "lost-computed-tasks")
        for key in event.get(field, ())
        if str(key).startswith("partial_fit-")
    }


def without_timing(history: dict[Any, list[dict[str, Any]]]) -> dict[Any, list[dict]]:
    return {
        k: [{f: v for f, v in r.items() if f not in TIMING} for r in records]
        for k, records in history.items()
    }


@pytest.mark.slow
def test_search_survives_a_worker_killed_mid_search(own_client: Client) -> None:
    X, y = make_classification(
        n_samples=20_000, n_features=10, n_informative=5, chunks=2_000, random_state=3
    )
    undisturbed = search().fit(X, y, classes=[0, 1])

    killed: list[str] = []
    kill_busiest_worker = killer(own_client, killed, after=30)

    disturbed = observe(search(), on_record=kill_busiest_worker)
    disturbed.fit(X, y, classes=[0, 1])

    assert models_hit(own_client, killed), "a killed worker took model states with it"
    assert list(disturbed.cv_results_["partial_fit_calls"]) == [25] * 4
    for records in disturbed.model_history_.values():
        assert [r["partial_fit_calls"] for r in records] == list(range(1, 26))
    restarted = {r["model_id"] for r in disturbed.restarts_}
    assert restarted, "the models whose state was lost are marked restarted"
    # Recomputed from lineage, the lost models continued exactly where they were.
    assert without_timing(disturbed.model_history_) == without_timing(undisturbed.model_history_)
    assert disturbed.best_score_ == undisturbed.best_score_


@pytest.mark.slow
def test_a_tracked_search_ends_with_consistent_runs_after_a_worker_died(
    own_client: Client, settings: Settings
) -> None:
    X, y = make_classification(
        n_samples=20_000, n_features=10, n_informative=5, chunks=2_000, random_state=4
    )
    tracker = Tracker(settings)
    killed: list[str] = []
    tracked = search_and_log(
        search(),
        X,
        y,
        tracker=tracker,
        client=own_client,
        fit_params={"classes": [0, 1]},
        on_record=killer(own_client, killed, after=30),
    )
    assert models_hit(own_client, killed), "a killed worker took model states with it"
    store = MlflowClient(tracker.tracking_uri)
    runs = store.search_runs([tracker.experiment_id])
    assert len(runs) == 5  # the parent and 4 trials
    assert {r.info.status for r in runs} == {"FINISHED"}
    restarted = {r["model_id"] for r in tracked.search.restarts_}
    assert restarted, "the models whose state was lost are marked restarted"
    parent = store.get_run(tracked.run_id)
    assert parent.data.metrics["n_restarted"] == len(restarted)
    assert parent.data.metrics["partial_fit_calls"] == 4 * 25
    for model_id, run_id in tracked.trial_run_ids.items():
        run = store.get_run(run_id)
        assert run.data.tags["scaleml.restarted"] == str(model_id in restarted).lower()
        assert run.data.metrics["restarted"] == int(model_id in restarted)
        steps = store.get_metric_history(run_id, "score")
        assert sorted(m.step for m in steps) == list(range(1, 26))  # no step lost or doubled


@pytest.mark.slow
@pytest.mark.timeout(180)  # a step left pinned to the dead worker would wait forever
def test_a_search_whose_models_follow_the_blocks_survives_a_worker_killed(
    own_client: Client,
) -> None:
    """Blocks of 1.2 MB: the models travel to them (on two workers the default would move
    these blocks to 4 models: ``placement="models"``), each step pinned to its block's worker
    (work stealing leaves it there). The killed worker takes blocks and model states with it;
    Dask recomputes them, and the steps pinned to it run on the workers left."""
    X, y = make_classification(
        n_samples=36_000, n_features=20, n_informative=5, chunks=9_000, random_state=5
    )
    undisturbed = search("models").fit(X, y, classes=[0, 1])

    killed: list[str] = []
    disturbed = observe(search("models"), on_record=killer(own_client, killed, after=30))
    with get_task_stream(own_client) as stream:
        disturbed.fit(X, y, classes=[0, 1])

    assert models_hit(own_client, killed), "a killed worker took model states with it"
    keys = [str(task["key"]) for task in stream.data]
    assert not [k for k in keys if k.startswith("prefetch-")], "no block was fetched"
    assert [k for k in keys if k.startswith("partial_fit-")]
    assert list(disturbed.cv_results_["partial_fit_calls"]) == [25] * 4
    for records in disturbed.model_history_.values():
        assert [r["partial_fit_calls"] for r in records] == list(range(1, 26))
    assert {r["model_id"] for r in disturbed.restarts_}, "the models hit are marked restarted"
    assert without_timing(disturbed.model_history_) == without_timing(undisturbed.model_history_)
    assert disturbed.best_score_ == undisturbed.best_score_ > 0.5
