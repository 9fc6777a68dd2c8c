"""Distributed boosting: XGBoost through ``xgboost.dask``, LightGBM through its Dask estimators.

Data never passes through the client: a scaleml :class:`~scaleml.data.Dataset`'s blocks are
read by tasks on the workers (one training part per worker), and dask collections are computed
and gathered there. Validation uses the dataset's validation blocks (or ``eval_set``), drives
early stopping, and its metric per boosting round is returned as the history.

Threads: both libraries run OpenMP inside a Dask task; the number of threads is set to the
workers' thread count (``n_jobs``), so that a 1-thread worker does not start one OpenMP thread
per core and fight the other workers for the CPU.
"""

from __future__ import annotations

import numbers
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy as np
from distributed import Client, get_client, wait

from scaleml.dashboard._events import activity, note, publish
from scaleml.data import Dataset
from scaleml.errors import TrainingError
from scaleml.train._boosting_params import (
    DASK_BOOSTING_ESTIMATORS,
    Library,
    check_metric_names,
    resolve_estimator,
)
from scaleml.train._placement import PlacedData, place_collections, place_dataset
from scaleml.train._scoring import add_statistics, block_statistics, metrics_from_statistics

_DEFAULT_N_ESTIMATORS = 100  # both libraries' default when n_estimators is None
_EXAMPLE_ROWS = 5

__all__ = ["DASK_BOOSTING_ESTIMATORS", "BoostingResult", "train_boosting"]


@dataclass
class BoostingResult:
    """A distributed boosting training: the fitted models and the history of the training."""

    estimator: Any
    """The fitted Dask estimator (``DaskXGBClassifier``, ``DaskLGBMRegressor`` ...)."""
    model: Any
    """The same model as a plain single-machine scikit-learn-API estimator, for serving
    (``XGBClassifier`` built from the booster, or LightGBM's ``to_local()``). Its ``predict``
    uses the trees up to ``best_iteration``."""
    library: Library
    params: dict[str, Any]
    """The estimator's JSON parameters as trained (``client`` left out)."""
    history: dict[str, list[float]]
    """Validation metric name -> its value after each boosting round."""
    best_iteration: int
    """Zero-based boosting round the served model ends at: the best round under early
    stopping, else the last one."""
    n_rounds: int
    """Boosting rounds actually trained."""
    n_estimators: int
    early_stopping_rounds: int | None
    stopped_early: bool
    seconds: float
    """Wall time of the distributed fit (data placement included, scoring excluded)."""
    scores: dict[str, float]
    """scaleml's validation metrics of ``model`` (accuracy/log_loss, or r2/mse/rmse/mae),
    computed on the workers over every validation row; empty without validation data."""
    features: list[str] | None
    input_example: Any = field(repr=False, default=None)
    """The first rows of the training features, for model signatures."""

    @property
    def best_scores(self) -> dict[str, float]:
        """Each validation metric of the history at ``best_iteration``."""
        return {
            name: values[self.best_iteration]
            for name, values in self.history.items()
            if len(values) > self.best_iteration
        }


def train_boosting(
    estimator: Any,
    data: Dataset | Any,
    y: Any | None = None,
    *,
    eval_set: tuple[Any, Any] | None = None,
    client: Client | None = None,
    early_stopping_rounds: int | None = None,
    eval_metric: str | list[str] | None = None,
) -> BoostingResult:
    """Train a gradient-boosting model on the cluster with XGBoost's or LightGBM's Dask API.

    Args:
        estimator: an estimator spec (``{"estimator": "DaskXGBClassifier", "params": {...}}``,
            an :class:`~scaleml.estimators.EstimatorSpec` or JSON text) or an instance of
            ``xgboost.dask.DaskXGBClassifier``/``DaskXGBRegressor``,
            ``lightgbm.DaskLGBMClassifier``/``DaskLGBMRegressor``; the single-machine classes
            (``XGBClassifier`` ...) are trained as their Dask counterparts. Not modified.
        data: a :class:`~scaleml.data.Dataset` (trained on its training blocks, validated on its
            validation blocks) or the features as a dask array or DataFrame.
        y: the target as a dask array or Series, when ``data`` is a dask collection.
        eval_set: ``(X_val, y_val)`` dask collections, when ``data`` is a dask collection.
        client: the Dask client; the current one when omitted.
        early_stopping_rounds: stop when the validation metric has not improved for this many
            rounds (XGBoost: its last eval metric; LightGBM: any of its metrics). Needs
            validation data. Overrides an ``early_stopping_rounds`` in XGBoost's parameters.
        eval_metric: validation metric name(s) in the library's own terms (``"logloss"``,
            ``"auc"``, ``"rmse"``; LightGBM: ``"binary_logloss"``, ``"l2"`` ...); default the
            objective's metric.

    Returns:
        A :class:`BoostingResult` with the fitted Dask estimator, its single-machine model, the
        validation history, best iteration, scores and timing.

    Raises:
        EstimatorSpecError: the estimator is not allowed or has an unknown or non-JSON parameter.
        TrainingError: an argument or parameter value is invalid; raised before any work starts.
    """
    model, library = resolve_estimator(estimator)
    metrics = check_metric_names(eval_metric)
    has_validation = _check_data(data, y, eval_set)
    if early_stopping_rounds is not None and not (
        isinstance(early_stopping_rounds, int)
        and not isinstance(early_stopping_rounds, bool)
        and early_stopping_rounds >= 1
    ):
        raise TrainingError(
            f"early_stopping_rounds must be an integer >= 1 or None, got {early_stopping_rounds!r}"
        )
    if library == "xgboost" and early_stopping_rounds is None:
        early_stopping_rounds = model.get_params().get("early_stopping_rounds")
    if early_stopping_rounds is not None and not has_validation:
        raise TrainingError(
            "early_stopping_rounds needs validation data: a Dataset with validation blocks "
            "(validation_fraction > 0) or an eval_set"
        )
    client = client or _current_client()
    started = time.perf_counter()
    name = type(model).__name__
    with activity("training", name, client=client, trainer=library) as here:
        placed = _place(client, data, y, eval_set, replicate_validation=library == "lightgbm")
        try:
            _raise_read_errors(placed)
            threads = min(client.nthreads()[worker] for worker in placed.workers)
            if library == "xgboost":
                _fit_xgboost(model, client, placed, threads, early_stopping_rounds, metrics)
            else:
                _fit_lightgbm(model, client, placed, early_stopping_rounds, metrics)
            seconds = time.perf_counter() - started
            local = _local_model(model, library, threads)
            scores = _validation_scores(client, local, placed)
            example = client.submit(_head, placed.first_part, pure=False).result()
        finally:
            placed.release()
        history = _history(model, library)
        # LightGBM keeps only the trees up to the best round after early stopping: the history
        # tells how many rounds ran.
        n_rounds = max([_rounds(model, library), *(len(v) for v in history.values())])
        n_estimators = model.get_params().get("n_estimators") or _DEFAULT_N_ESTIMATORS
        _publish_rounds(here.id, history, n_rounds, seconds, placed, client)
    return BoostingResult(
        estimator=model,
        model=local,
        library=library,
        params={k: v for k, v in model.get_params(deep=False).items() if k != "client"},
        history=history,
        best_iteration=_best_iteration(model, library, n_rounds, early_stopping_rounds),
        n_rounds=n_rounds,
        n_estimators=n_estimators,
        early_stopping_rounds=early_stopping_rounds,
        stopped_early=n_rounds < n_estimators,
        seconds=seconds,
        scores=scores,
        features=placed.features,
        input_example=example,
    )


def _publish_rounds(
    training_id: str,
    history: dict[str, list[float]],
    n_rounds: int,
    seconds: float,
    placed: PlacedData,
    client: Client,
) -> None:
    """The validation history to the dashboard's trainings page: one point per round (at
    most 200, evenly spaced), the first metric as the page's metric."""
    if not history:
        return
    metric = next(iter(history))
    rows = getattr(placed.X, "shape", (None,))[0]
    rate = float(rows) / seconds if isinstance(rows, numbers.Integral) and seconds > 0 else None
    note(client, scoring=metric, rounds=n_rounds, rows_per_s=rate)
    n = len(history[metric])
    for i in sorted({round(k * (n - 1) / 199) for k in range(200)} if n > 200 else range(n)):
        scores = {name: values[i] for name, values in history.items() if i < len(values)}
        record = {"event": "epoch", "id": training_id, "epoch": i + 1, "scores": scores}
        publish("training", {**record, "rows_per_s": rate}, client)


def _check_data(data: Any, y: Any, eval_set: Any) -> bool:
    if isinstance(data, Dataset):
        if y is not None or eval_set is not None:
            raise TrainingError(
                "y and eval_set are given by the Dataset itself (its target and its "
                "validation blocks); pass them only with dask collections"
            )
        if data.target is None:
            raise TrainingError(f"boosting needs a dataset with a target column: {data!r}")
        if not data.train_blocks:
            raise TrainingError(f"{data!r} has no training blocks")
        return bool(data.validation_blocks)
    if y is None:
        raise TrainingError("y is required when data is a dask collection")
    if eval_set is not None and (not isinstance(eval_set, tuple | list) or len(eval_set) != 2):
        raise TrainingError("eval_set must be one (X_val, y_val) pair of dask collections")
    named = [("data", data), ("y", y)]
    if eval_set is not None:
        named += [("eval_set X", eval_set[0]), ("eval_set y", eval_set[1])]
    for name, value in named:
        if not isinstance(value, da.Array | dd.DataFrame | dd.Series):
            raise TrainingError(
                f"{name} must be a scaleml Dataset or a dask array, DataFrame or Series, "
                f"got {type(value).__name__}"
            )
    return eval_set is not None


def _place(
    client: Client, data: Any, y: Any, eval_set: Any, *, replicate_validation: bool
) -> PlacedData:
    if isinstance(data, Dataset):
        return place_dataset(client, data, replicate_validation=replicate_validation)
    return place_collections(
        client,
        data,
        y,
        None if eval_set is None else tuple(eval_set),
        replicate_validation=replicate_validation,
    )


def _fit_xgboost(
    model: Any,
    client: Client,
    placed: PlacedData,
    threads: int,
    early_stopping_rounds: int | None,
    metrics: list[str] | None,
) -> None:
    updates: dict[str, Any] = {"n_jobs": threads, "early_stopping_rounds": early_stopping_rounds}
    if metrics is not None:
        updates["eval_metric"] = metrics if len(metrics) > 1 else metrics[0]
    model.set_params(**updates)
    model.client = client
    eval_set = None if placed.X_val is None else [(placed.X_val, placed.y_val)]
    model.fit(placed.X, placed.y, eval_set=eval_set, verbose=False)


def _fit_lightgbm(
    model: Any,
    client: Client,
    placed: PlacedData,
    early_stopping_rounds: int | None,
    metrics: list[str] | None,
) -> None:
    import lightgbm

    # LightGBM sets num_threads to each worker's thread count itself (and warns that an
    # n_jobs parameter is ignored, so it is dropped here).
    model.set_params(client=client, n_jobs=None)
    params = model.get_params()
    if "verbose" not in params and "verbosity" not in params:
        model.set_params(verbose=-1)
    options: dict[str, Any] = {}
    if placed.X_val is not None:
        options.update(eval_X=(placed.X_val,), eval_y=(placed.y_val,), eval_names=["validation"])
    if metrics is not None:
        options["eval_metric"] = metrics
    if early_stopping_rounds is not None:
        options["callbacks"] = [lightgbm.early_stopping(early_stopping_rounds, verbose=False)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(placed.X, placed.y, **options)
    model.set_params(client=None)


def _raise_read_errors(placed: PlacedData) -> None:
    """Raise the first error of the placement's reads (bad data: a ``DatasetError`` naming
    the file) here, as itself, before the libraries see the data."""
    wait(placed.futures)
    for future in placed.futures:
        if future.status == "error":
            future.result()


def _local_model(model: Any, library: Library, threads: int) -> Any:
    if library == "lightgbm":
        local = model.to_local()
        local.set_params(n_jobs=threads)
        return local
    import xgboost

    is_classifier = "Classifier" in type(model).__name__
    local_class = xgboost.XGBClassifier if is_classifier else xgboost.XGBRegressor
    params = {k: v for k, v in model.get_params().items() if k in local_class().get_params()}
    local = local_class(**{**params, "n_jobs": threads})
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.json")
        model.save_model(path)
        local.load_model(path)
    return local


def _history(model: Any, library: Library) -> dict[str, list[float]]:
    if library == "xgboost":
        try:
            evals = model.evals_result()
        except Exception:  # no eval set: XGBoost has no evaluation history to give
            evals = {}
    else:
        evals = getattr(model, "evals_result_", None) or {}
    for name in ("validation_0", "validation"):
        if evals.get(name):
            return {metric: [float(v) for v in values] for metric, values in evals[name].items()}
    return {}


def _rounds(model: Any, library: Library) -> int:
    if library == "xgboost":
        return int(model.get_booster().num_boosted_rounds())
    return int(model.booster_.current_iteration())


def _best_iteration(
    model: Any, library: Library, n_rounds: int, early_stopping_rounds: int | None
) -> int:
    if early_stopping_rounds is not None:
        if library == "xgboost":
            return int(model.best_iteration)
        if getattr(model, "best_iteration_", 0) > 0:
            return int(model.best_iteration_) - 1
    return n_rounds - 1


def _validation_scores(client: Client, model: Any, placed: PlacedData) -> dict[str, float]:
    if not placed.validation_parts:
        return {}
    scattered = client.scatter(model, hash=False)
    parts = [
        client.submit(_statistics, scattered, x, y, pure=False) for x, y in placed.validation_parts
    ]
    return metrics_from_statistics(add_statistics(client.gather(parts)))


def _statistics(model: Any, x: Any, y: Any) -> dict[str, float]:
    return block_statistics(model, x, np.asarray(y))


def _head(part: Any) -> Any:
    if hasattr(part, "head"):
        return part.head(_EXAMPLE_ROWS).reset_index(drop=True)
    return part[:_EXAMPLE_ROWS]


def _current_client() -> Client:
    try:
        return get_client()
    except ValueError:
        raise TrainingError(
            "no Dask client: pass client=, or open one with scaleml.cluster.connect()"
        ) from None
