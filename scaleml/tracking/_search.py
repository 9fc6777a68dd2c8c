"""Tracked hyper-parameter searches: one parent MLflow run per search, one nested run per trial.

Adaptive searches (scaleml's ``IncrementalSearchCV``, ``HyperbandSearchCV``, ...) are watched
through :func:`scaleml.search.observe`: every trial's run is opened when the search starts,
its score after each ``partial_fit`` call is a step metric (``score``, step = the model's
``partial_fit_calls``), and when the search ends each run gets its final score and calls and
says whether the model was stopped early and whether it was restarted after a worker died.
Grid and random searches (dask-ml's or scikit-learn's) get one nested run per candidate from
``cv_results_`` once they are fitted.

Logging never runs in the search's driver loop: the callbacks only queue records, and a
background thread writes them with ``MlflowClient.log_batch``, flushing every
1,000 records or 2 seconds, and at the end. If anything raises
(the search, a callback, MLflow), the parent and every trial run end FAILED (KILLED on
Ctrl-C): no run is left RUNNING.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaleml.dashboard._events import Activity, activity, current, note, publish
from scaleml.data import Dataset
from scaleml.tracking._explain import explain_final_model
from scaleml.tracking._monitoring import log_contract
from scaleml.tracking._promotion import Promotion, check_policy, register_and_promote
from scaleml.tracking._runs import RunLogger, Tracker
from scaleml.tracking._search_describe import (
    check_candidates,
    leaderboard,
    log_search,
    plain,
    plain_dict,
)
from scaleml.tracking._trial_runs import TrialRuns


@dataclass(frozen=True)
class TrackedSearch:
    """A search logged to MLflow.

    Attributes:
        run_id: the parent run.
        search: the fitted search object.
        best_score: ``search.best_score_``.
        best_params: ``search.best_params_`` (plain Python values).
        model_uri: the best model logged in the parent run (None if the search kept none,
            e.g. a grid search with ``refit=False``).
        registered_version: the new registry version when ``register_as`` was given.
        trial_run_ids: ``{model_id: run_id}`` of the nested runs (for grid and random
            searches the model id is the candidate's index in ``cv_results_``).
    """

    run_id: str
    search: Any
    best_score: float
    best_params: dict[str, Any]
    model_uri: str | None
    registered_version: str | None
    trial_run_ids: dict[Hashable, str]
    promotion: Promotion | None = None


def search_and_log(
    search: Any,
    X: Any,
    y: Any = None,
    *,
    tracker: Tracker | None = None,
    client: Any = None,
    fit_params: dict[str, Any] | None = None,
    register_as: str | None = None,
    alias: str = "champion",
    promote: str = "if-better",
    run_name: str | None = None,
    on_record: Callable[[dict[str, Any]], object] | None = None,
    dataset: Dataset | None = None,
) -> TrackedSearch:
    """Fit ``search`` on ``(X, y)`` inside a parent MLflow run with a nested run per trial.

    Args:
        search: an unfitted search: one of scaleml's adaptive searches, or a grid/random search
            with ``cv_results_`` (dask-ml's ``GridSearchCV``/``RandomizedSearchCV``, or
            scikit-learn's); :func:`scaleml.search.make_search` builds them.
        X, y: dask arrays or dataframes, or a scaleml ``Dataset`` (``y`` None). A grid or
            random search on a ``Dataset`` reads its training blocks as dask arrays: each fit
            then holds a whole training fold in one worker's memory.
        tracker: where the runs go (default: a :class:`Tracker` from the environment).
        client: the Dask client to run on (default: the current one).
        fit_params: passed to ``search.fit`` (e.g. ``{"classes": [0, 1]}``).
        register_as: register the best model under this name and move ``alias`` to it as
            ``promote`` says: ``"if-better"`` (when it scores at least as well as the alias's
            holder on the same validation data: the dataset's validation blocks, else
            ``X, y``), ``"always"`` or ``"never"``.
        run_name: the parent run's name (default ``search-<Search>-<Estimator>``).
        on_record: called, in the thread that fits, with every history record of an adaptive
            search (``model_id``, ``params``, ``partial_fit_calls``, ``score``, ...), or with
            a summary per candidate of a grid/random search (``model_id``, ``params``,
            ``mean_test_score``, ``rank_test_score``, ...). Raising from it stops the search
            (its runs end FAILED) and the error propagates.
        dataset: the ``Dataset`` that ``X``/``y`` were read from, recorded as the run's input.

    Returns:
        the :class:`TrackedSearch`.
    """
    check_policy(promote)
    tracker = tracker or Tracker()
    adaptive = _is_adaptive(search)
    if not adaptive and not _is_cv_search(search):
        raise TypeError(
            "search must be a scaleml adaptive search or a grid/random search with cv_results_,"
            f" got {type(search).__name__}"
        )
    check_candidates(search)
    name = run_name or f"search-{type(search).__name__}-{type(search.estimator).__name__}"
    with tracker.run(name, tags={"scaleml.kind": "search"}) as parent:
        trials = TrialRuns(tracker.client, tracker.experiment_id, parent.run_id, tracker.tags)
        try:
            log_search(parent, search)
            described = dataset if dataset is not None else X
            if isinstance(described, Dataset):
                parent.log_dataset(described)  # once, also when X is that same dataset
            if not isinstance(X, Dataset):
                parent.log_params({"data.type": f"{type(X).__module__}.{type(X).__qualname__}"})
            with client.as_current() if client is not None else nullcontext():
                if adaptive:
                    summary = _fit_adaptive(search, X, y, fit_params, trials, on_record)
                else:
                    summary = _fit_cv(search, X, y, fit_params, trials, on_record)
                example = _input_example(X)
            trials.finish()
            if summary.get("shown") is not None:  # the dashboard's trial table links the runs
                runs = {str(k): v for k, v in trials.run_ids.items()}
                publish("search", {"event": "note", "id": summary["shown"].id, "trial_runs": runs})
        except BaseException as exc:
            trials.abort("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        best_params = {k: plain(v) for k, v in getattr(search, "best_params_", {}).items()}
        best_score = float(getattr(search, "best_score_", float("nan")))
        parent.log_params({f"best.{k}": v for k, v in best_params.items()})
        parent.log_metrics({"best_score": best_score, **summary["metrics"]})
        best_id = summary.get("best_model_id")
        tags = {"scaleml.best_model_id": best_id}
        if best_id in trials.run_ids:
            tags["scaleml.best_run_id"] = trials.run_ids[best_id]
        parent.set_tags(tags)
        parent.log_dict(leaderboard(search), "leaderboard.json")
        model_uri = None
        if hasattr(search, "best_estimator_"):
            model_uri = _log_model(parent, search.best_estimator_, example)
            described = dataset if dataset is not None else X
            log_contract(parent, described, search.best_estimator_, client)
            explain_final_model(
                parent,
                search.best_estimator_,
                dataset if dataset is not None else X,
                tracker.settings,
                client,
            )
    promotion = None
    if register_as and model_uri:
        promotion = register_and_promote(
            model_uri,
            register_as,
            model=search.best_estimator_,
            data=dataset if dataset is not None else X,
            y=None if isinstance(dataset if dataset is not None else X, Dataset) else y,
            alias=alias,
            promote=promote,
            scoring=search.scoring if isinstance(search.scoring, str) else None,
            tracker=tracker,
            client=client,
        )
    return TrackedSearch(
        parent.run_id,
        search,
        best_score,
        best_params,
        model_uri,
        promotion.version if promotion else None,
        dict(trials.run_ids),
        promotion,
    )


def _fit_adaptive(
    search: Any,
    X: Any,
    y: Any,
    fit_params: dict[str, Any] | None,
    trials: TrialRuns,
    on_record: Callable[[dict[str, Any]], object] | None,
) -> dict[str, Any]:
    from scaleml.search import SearchSummary, observe
    from scaleml.search._observe import observers_of, unobserve

    ended: list[SearchSummary] = []
    searches: list[Activity | None] = []  # the dashboard's search, to link the trial runs
    tagged: set[tuple[Hashable, str]] = set()

    def tag_once(model_id: Hashable, key: str, value: Any) -> None:
        if (model_id, key) not in tagged:
            tagged.add((model_id, key))
            trials.tag(model_id, key, value)

    def started(start: dict[str, Any]) -> None:
        searches.append(current())
        for model_id, params in start["models"].items():
            trials.open(model_id, f"trial-{model_id}", plain_dict(params))

    def recorded(record: dict[str, Any]) -> None:
        trials.metric(record["model_id"], "score", record["score"], record["partial_fit_calls"])
        if record.get("restarted"):
            tag_once(record["model_id"], "scaleml.restarted", "true")
        if "bracket" in record:
            tag_once(record["model_id"], "scaleml.bracket", record["bracket"])
        if on_record is not None:
            on_record(record)

    before = observers_of(search)
    observe(search, on_start=started, on_record=recorded, on_end=ended.append)
    try:
        search.fit(X, y, **(fit_params or {}))
    finally:
        unobserve(search)
        for o in before:
            observe(search, on_start=o.on_start, on_record=o.on_record, on_end=o.on_end)
    [summary] = ended
    restarted = set(summary.restarted)
    for model_id, records in search.model_history_.items():
        stopped = bool(summary.stopped_early[model_id])
        trials.close(
            model_id,
            metrics={
                "final_score": records[-1]["score"],
                "partial_fit_calls": records[-1]["partial_fit_calls"],
                "stopped_early": int(stopped),
                "restarted": int(model_id in restarted),
            },
            tags={
                "scaleml.stopped_early": str(stopped).lower(),
                "scaleml.restarted": str(model_id in restarted).lower(),
            },
        )
    metrics = {
        "n_models": summary.n_models,
        "partial_fit_calls": summary.partial_fit_calls,
        "wall_time_s": summary.wall_time_s,
        "n_stopped_early": sum(summary.stopped_early.values()),
        "n_restarted": len(restarted),
    }
    shown = searches[0] if searches else None
    return {"metrics": metrics, "best_model_id": summary.best_model_id, "shown": shown}


def _fit_cv(
    search: Any,
    X: Any,
    y: Any,
    fit_params: dict[str, Any] | None,
    trials: TrialRuns,
    on_record: Callable[[dict[str, Any]], object] | None,
) -> dict[str, Any]:
    names: list[str] = []
    if isinstance(X, Dataset):
        from scaleml.search._inmemory import dataset_arrays

        if y is not None:
            raise ValueError("y must be None when X is a Dataset (its target column is y)")
        names = list(X.features)
        X, y = dataset_arrays(X)
    fail_fast = type(search).__module__.startswith("dask_ml") and search.scheduler is None
    if fail_fast:  # dask-ml retries a failed fit task forever: end the search with its error
        from scaleml.search._inmemory import fail_fast_get

        search.set_params(scheduler=fail_fast_get)
    started = time.perf_counter()
    name = f"{type(search).__name__}({type(search.estimator).__name__})"
    scoring = search.scoring if isinstance(search.scoring, str) else "default score"
    try:
        with activity("search", name, search=type(search).__name__, scoring=scoring) as shown:
            search.fit(X, y, **(fit_params or {}))
            _publish_candidates(shown.id, search.cv_results_)
    finally:
        if fail_fast:
            search.set_params(scheduler=None)
    seconds = time.perf_counter() - started
    if names and hasattr(search, "best_estimator_"):
        from scaleml.estimators import name_features

        name_features(search.best_estimator_, names)  # fitted on arrays: give it the columns
    results = search.cv_results_
    numeric = [
        key
        for key, values in results.items()
        if not key.startswith("param") and np.issubdtype(np.asarray(values).dtype, np.number)
    ]
    for index, params in enumerate(results["params"]):
        trials.open(index, f"candidate-{index}", plain_dict(params))
        summary = {"model_id": index, "params": plain_dict(params)}
        summary.update({key: plain(results[key][index]) for key in numeric})
        if on_record is not None:
            on_record(summary)
    for index in range(len(results["params"])):
        trials.close(index, metrics={k: results[k][index] for k in numeric}, tags={})
    return {
        "metrics": {"n_candidates": len(results["params"]), "wall_time_s": seconds},
        "best_model_id": getattr(search, "best_index_", None),
        "shown": shown,
    }


def _publish_candidates(search_id: str, results: dict[str, Any]) -> None:
    """A grid or random search's candidates to the dashboard: one point each (one fit)."""
    params = {str(i): plain_dict(p) for i, p in enumerate(results["params"])}
    note(n_models=len(params), models=params)
    for index, score in enumerate(results.get("mean_test_score", [])):
        trial = {"event": "trial", "id": search_id, "model": index, "calls": 1, "score": score}
        publish("search", trial)


def _log_model(run: RunLogger, estimator: Any, example: Any) -> str:
    module = type(estimator).__module__.split(".")[0]
    if module in ("xgboost", "lightgbm"):
        return run.log_native_model(estimator, module, example)
    return run.log_sklearn_model(estimator, example)


def _input_example(X: Any, n_rows: int = 5) -> Any:
    if isinstance(X, Dataset):
        return X.input_example(n_rows)
    if hasattr(X, "head") and hasattr(X, "npartitions"):
        return X.head(n_rows, npartitions=1)
    if hasattr(X, "head"):
        return X.head(n_rows)
    example = X[:n_rows]
    return np.asarray(example.compute() if hasattr(example, "compute") else example)


def _is_adaptive(search: Any) -> bool:
    from scaleml.search._base import BaseAdaptiveSearch

    return isinstance(search, BaseAdaptiveSearch)


def _is_cv_search(search: Any) -> bool:
    return any(hasattr(search, k) for k in ("param_grid", "param_distributions"))
