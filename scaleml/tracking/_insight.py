"""MLflow's side of evaluations: load a model to evaluate, read the learning history its runs
hold, find candidate models to compare, and log an evaluation (``eval_`` metrics, the dataset
as an input, ``insight/report.html``, ``insight/metrics.json``, ``insight/curves.json``).

It knows nothing of how evaluations are computed: it takes plain data (metrics, JSON-able
dicts, a report file) from the insight stage.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from scaleml.config import Settings
from scaleml.data import Dataset
from scaleml.errors import TrackingError
from scaleml.tracking._runs import RunLogger, configure
from scaleml.tracking._scoring import load_fitted

EVAL_PREFIX = "eval_"
_MAX_TRIALS = 200


@dataclass(frozen=True)
class EvaluableModel:
    """A model loaded from MLflow for evaluation."""

    uri: str
    model: Any
    input_names: list[str] | None
    run_id: str | None


def normalize_uri(uri: str) -> str:
    """``NAME@ALIAS`` and ``NAME/VERSION`` become ``models:/...``; URIs stay as they are."""
    if "://" in uri or uri.startswith(("models:/", "runs:/")):
        return uri
    return f"models:/{uri}"


def load_evaluable(uri: str, *, settings: Settings | None = None) -> EvaluableModel:
    """Load the model at ``uri`` as its library's own object (scikit-learn, XGBoost, LightGBM),
    with the input column names of its signature and the run that logged it.

    Raises:
        TrackingError: no such model, or it has none of those flavors.
    """
    configure(settings)
    uri = normalize_uri(uri)
    try:
        info = mlflow.models.get_model_info(uri)
    except MlflowException as exc:
        raise TrackingError(f"cannot load model {uri}: {exc.message}") from None
    model = load_fitted(uri)
    if model is None:
        raise TrackingError(
            f"model {uri} has no scikit-learn, XGBoost or LightGBM flavor ({list(info.flavors)}):"
            " only those can be evaluated on the cluster"
        )
    names = None
    signature = info.signature
    if signature is not None and not signature.inputs.is_tensor_spec():
        names = [str(name) for name in signature.inputs.input_names()]
    return EvaluableModel(uri, model, names, info.run_id)


def learning_history(run_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """The learning curves a run holds: ``{"epochs": {metric: [[epoch, value], ...]}}`` for a
    training (its ``val_*`` step metrics), ``{"trials": {run name: [[partial_fit calls,
    score], ...]}}`` for a search (its trial runs' ``score`` history)."""
    client = configure(settings)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return {}
    history: dict[str, Any] = {}
    epochs = {}
    for key in run.data.metrics:
        if key.startswith("val_"):
            points = client.get_metric_history(run_id, key)
            if len(points) > 1:
                epochs[key] = sorted([int(p.step), float(p.value)] for p in points)
    if epochs:
        history["epochs"] = epochs
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
        max_results=_MAX_TRIALS,
    )
    trials = {}
    for child in children:
        if "score" not in child.data.metrics:
            continue
        points = client.get_metric_history(child.info.run_id, "score")
        name = child.info.run_name or child.info.run_id[:8]
        trials[name] = sorted([int(p.step), float(p.value)] for p in points)
    if trials:
        history["trials"] = trials
    return history


def candidate_models(
    *,
    registered: str | None = None,
    experiment: str | None = None,
    parent_run: str | None = None,
    settings: Settings | None = None,
    limit: int = 50,
) -> dict[str, str]:
    """``{name: model URI}`` of the models to compare: every version of a registered model,
    every run of an experiment that logged a model, or a search's trial runs that did.

    Raises:
        TrackingError: the registered model or experiment does not exist.
    """
    client = configure(settings)
    found: dict[str, str] = {}
    if registered:
        try:
            versions = client.search_model_versions(f"name = '{registered}'")
        except MlflowException as exc:
            raise TrackingError(f"no registered model {registered!r}: {exc.message}") from None
        if not versions:
            raise TrackingError(f"registered model {registered!r} has no versions")
        for version in sorted(versions, key=lambda v: int(v.version))[-limit:]:
            found[f"{registered} v{version.version}"] = f"models:/{registered}/{version.version}"
    if experiment or parent_run:
        runs = _runs_with_models(client, experiment, parent_run, limit)
        for run in runs:
            uri = run.data.tags.get("scaleml.model_uri")
            if uri:
                found[run.info.run_name or run.info.run_id[:8]] = uri
    return found


def _runs_with_models(client: Any, experiment: str | None, parent_run: str | None, limit: int):
    if parent_run:
        try:
            parent = client.get_run(parent_run)
        except MlflowException as exc:
            raise TrackingError(f"no run {parent_run!r}: {exc.message}") from None
        return client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run}'",
            max_results=limit,
        )
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise TrackingError(f"no experiment {experiment!r}")
    return client.search_runs([found.experiment_id], max_results=limit)


def log_evaluation(
    run: RunLogger,
    *,
    metrics: dict[str, float],
    results: dict[str, Any],
    curves: dict[str, Any],
    dataset: Dataset | None = None,
    report: Path | None = None,
    prefix: str = "",
    tags: dict[str, Any] | None = None,
) -> None:
    """Log one evaluation to ``run``: ``eval_<prefix><metric>`` metrics (finite values), the
    dataset as an input (context ``evaluation``), ``insight/<prefix>metrics.json``,
    ``insight/<prefix>curves.json`` and the report as ``insight/<prefix>report.html``."""
    values = {
        f"{EVAL_PREFIX}{prefix}{metric_key(name)}": float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and value == value and abs(value) != float("inf")
    }
    run.log_metrics(values)
    if dataset is not None:
        run.log_dataset_input(dataset, context="evaluation")
    run.log_dict(results, f"insight/{prefix}metrics.json")
    run.log_dict(curves, f"insight/{prefix}curves.json")
    if report is not None:
        with tempfile.TemporaryDirectory() as folder:
            named = Path(folder) / f"{prefix}report.html"
            named.write_bytes(Path(report).read_bytes())
            run.client.log_artifact(run.run_id, str(named), artifact_path="insight")
    if tags:
        run.set_tags(tags)


def metric_key(name: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_ - . /`` and spaces)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)
