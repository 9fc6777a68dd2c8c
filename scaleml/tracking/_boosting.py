"""Tracked distributed boosting: trainings and searches logged with MLflow's native flavors.

A training is one run: parameters, dataset, the validation metrics after every boosting round
as step metrics (``val_<metric>``, step = zero-based round, sent in batches of rounds), best
iteration, rounds, time, scaleml's validation scores (``score_<metric>``) and the model with
``mlflow.xgboost`` / ``mlflow.lightgbm``, its signature and an input example.

A search is one parent run (method, space, scoring, best score and parameters, the best model)
with one nested run per candidate (its parameters and everything a training run has except the
model). A run whose code raises is ended FAILED.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric

from scaleml.data import Dataset
from scaleml.tracking._explain import explain_final_model
from scaleml.tracking._monitoring import log_contract
from scaleml.tracking._promotion import Promotion, check_policy, register_and_promote
from scaleml.tracking._runs import RunLogger, Tracker, class_path
from scaleml.train import BoostingResult, train_boosting

if TYPE_CHECKING:
    from scaleml.search._boosting import BoostingCandidate, BoostingSearchResult

_METRICS_PER_BATCH = 1000  # MLflow's limit of metrics in one log_batch request
_NOT_A_METRIC_NAME = re.compile(r"[^0-9A-Za-z_\-. /]")


@dataclass(frozen=True)
class TrackedBoosting:
    """A boosting training logged to MLflow: the result, its run and its model."""

    result: BoostingResult
    run_id: str
    model_uri: str
    registered_version: str | None = None
    promotion: Promotion | None = None


@dataclass(frozen=True)
class TrackedBoostingSearch:
    """A boosting search logged to MLflow: the search, its parent run, the candidates' runs
    (in candidate order) and the best model."""

    search: BoostingSearchResult
    run_id: str
    candidate_run_ids: list[str]
    model_uri: str
    registered_version: str | None = None
    promotion: Promotion | None = None


def train_boosting_and_log(
    estimator: Any,
    data: Dataset | Any,
    y: Any | None = None,
    *,
    tracker: Tracker | None = None,
    run_name: str | None = None,
    register_as: str | None = None,
    alias: str = "champion",
    promote: str = "if-better",
    **train_options: Any,
) -> TrackedBoosting:
    """Run :func:`scaleml.train.train_boosting` inside an MLflow run and log everything.

    ``train_options`` are passed on (``eval_set``, ``client``, ``early_stopping_rounds``,
    ``eval_metric``). With ``register_as`` the model is registered under that name and
    ``alias`` moved to the new version as ``promote`` says (``"if-better"``, ``"always"``,
    ``"never"``; see :func:`scaleml.tracking.train_and_log`).
    """
    check_policy(promote)
    tracker = tracker or Tracker()
    with tracker.run(run_name or f"boost-{_estimator_name(estimator)}") as run:
        run.log_params({f"train.{k}": v for k, v in train_options.items() if _loggable(k, v)})
        _log_data(run, data)
        result = train_boosting(estimator, data, y, **train_options)
        log_boosting_result(run, result)
        model_uri = run.log_native_model(result.model, result.library, result.input_example)
        log_contract(run, data, result.model, train_options.get("client"))
        explain_final_model(run, result.model, data, tracker.settings, train_options.get("client"))
    promotion = _promote(
        register_as, model_uri, result.model, data, y, alias, promote, tracker, train_options
    )
    version = promotion.version if promotion else None
    return TrackedBoosting(result, run.run_id, model_uri, version, promotion)


def search_boosting_and_log(
    estimator: Any,
    param_space: dict[str, Any],
    data: Dataset | Any,
    y: Any | None = None,
    *,
    tracker: Tracker | None = None,
    run_name: str | None = None,
    register_as: str | None = None,
    alias: str = "champion",
    promote: str = "if-better",
    **search_options: Any,
) -> TrackedBoostingSearch:
    """Run :func:`scaleml.search.search_boosting` as one parent MLflow run with a nested run
    per candidate, and log the best model (optionally registered with ``alias``).

    ``search_options`` are passed on (``method``, ``n_iter``, ``random_state``, ``scoring``,
    ``eval_set``, ``client``, ``early_stopping_rounds``, ``eval_metric``); ``promote`` as
    for :func:`train_boosting_and_log`.
    """
    check_policy(promote)
    # Imported here: importing the tracking stage does not import the whole search package.
    from scaleml.search._boosting import search_boosting

    tracker = tracker or Tracker()
    candidate_runs: list[str] = []
    with tracker.run(
        run_name or f"search-{_estimator_name(estimator)}", tags={"scaleml.kind": "boosting-search"}
    ) as parent:
        parent.log_params(
            {
                "search.space": json.dumps(param_space, default=repr),
                **{f"search.{k}": v for k, v in search_options.items() if _loggable(k, v)},
            }
        )
        _log_data(parent, data)

        @contextmanager
        def candidate_run(
            index: int, params: dict[str, Any]
        ) -> Iterator[Callable[[BoostingCandidate], None]]:
            with tracker.run(
                f"candidate-{index}",
                parent_run_id=parent.run_id,
                tags={"scaleml.candidate": index},
            ) as child:
                candidate_runs.append(child.run_id)
                child.log_params(params)

                def finished(candidate: BoostingCandidate) -> None:
                    log_boosting_result(child, candidate.result, skip_params=set(params))
                    child.log_metrics({"score": candidate.score})

                yield finished

        search = search_boosting(
            estimator, param_space, data, y, candidate_context=candidate_run, **search_options
        )
        best = search.best_candidate
        parent.log_params({f"best.{k}": v for k, v in best.params.items()})
        parent.log_params({"estimator": class_path(best.result.estimator)})
        parent.log_metrics(
            {
                f"best_{_metric_name(search.scoring)}": search.best_score,
                "best_index": best.index,
                "n_candidates": len(search.candidates),
                "search_seconds": search.seconds,
                "total_rounds": sum(c.result.n_rounds for c in search.candidates),
            }
        )
        parent.set_tags({"scaleml.best_run_id": candidate_runs[best.index]})
        model_uri = parent.log_native_model(
            best.result.model, best.result.library, best.result.input_example
        )
        log_contract(parent, data, best.result.model, search_options.get("client"))
        explain_final_model(
            parent, best.result.model, data, tracker.settings, search_options.get("client")
        )
    promotion = _promote(
        register_as, model_uri, best.result.model, data, y, alias, promote, tracker, search_options
    )
    version = promotion.version if promotion else None
    return TrackedBoostingSearch(
        search, parent.run_id, candidate_runs, model_uri, version, promotion
    )


def log_boosting_result(
    run: RunLogger, result: BoostingResult, *, skip_params: set[str] | None = None
) -> None:
    """Log a boosting training's parameters, per-round validation history (batched step
    metrics), best iteration, rounds, time and scores to ``run``."""
    skip = skip_params or set()
    params = {"estimator": class_path(result.estimator), "library": result.library}
    params.update({k: v for k, v in result.params.items() if k not in skip})
    run.log_params(params)
    log_history(run, result.history)
    summary: dict[str, float] = {
        "best_iteration": result.best_iteration,
        "n_rounds": result.n_rounds,
        "training_seconds": result.seconds,
    }
    summary.update({f"best_val_{_metric_name(k)}": v for k, v in result.best_scores.items()})
    summary.update({f"score_{_metric_name(k)}": v for k, v in result.scores.items()})
    run.log_metrics(summary)
    run.set_tags({"scaleml.stopped_early": result.stopped_early})


def log_history(run: RunLogger, history: dict[str, list[float]], prefix: str = "val_") -> None:
    """Log each metric's value per boosting round as step metrics (step = zero-based round),
    in as few requests as MLflow allows (one per 1,000 values)."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(f"{prefix}{_metric_name(name)}", float(value), now, step)
        for name, values in history.items()
        for step, value in enumerate(values)
    ]
    for start in range(0, len(metrics), _METRICS_PER_BATCH):
        run.client.log_batch(run.run_id, metrics=metrics[start : start + _METRICS_PER_BATCH])


def _promote(
    register_as: str | None,
    model_uri: str,
    model: Any,
    data: Any,
    y: Any,
    alias: str,
    promote: str,
    tracker: Tracker,
    options: dict[str, Any],
) -> Promotion | None:
    if not register_as:
        return None
    scoring = options.get("scoring")
    return register_and_promote(
        model_uri,
        register_as,
        model=model,
        data=data,
        y=y,
        alias=alias,
        promote=promote,
        scoring=scoring if isinstance(scoring, str) else None,
        tracker=tracker,
        client=options.get("client"),
    )


def _log_data(run: RunLogger, data: Any) -> None:
    if isinstance(data, Dataset):
        run.log_dataset(data)
    else:
        run.log_params({"data.type": f"{type(data).__module__}.{type(data).__qualname__}"})


def _loggable(key: str, value: Any) -> bool:
    return key not in ("client", "eval_set", "candidate_context") and not callable(value)


def _estimator_name(estimator: Any) -> str:
    if isinstance(estimator, dict):
        return str(estimator.get("estimator", "estimator")).rsplit(".", 1)[-1]
    if isinstance(estimator, str):
        return "estimator"
    spec_name = getattr(estimator, "estimator", None)
    if isinstance(spec_name, str):
        return spec_name.rsplit(".", 1)[-1]
    return type(estimator).__name__


def _metric_name(name: str) -> str:
    return _NOT_A_METRIC_NAME.sub("_", name)
