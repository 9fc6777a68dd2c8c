"""MLflow runs: a :class:`Tracker` opens runs in one experiment, a :class:`RunLogger` logs to one.

A run that raises is ended FAILED (KILLED on Ctrl-C), never left RUNNING.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.entities import Dataset as MlflowDataset
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

import scaleml
from scaleml.config import Settings, get_settings
from scaleml.data import Dataset

_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value
_DATASET_ATTEMPTS = 3


class Tracker:
    """Opens MLflow runs in one experiment of one tracking store.

    Args:
        settings: scaleml settings (tracking URI, experiment); read from the environment when
            omitted. An unset tracking URI leaves MLflow's own default in force.
        experiment: overrides ``settings.experiment``.
    """

    def __init__(self, settings: Settings | None = None, *, experiment: str | None = None) -> None:
        settings = settings or get_settings()
        self.client = configure(settings)
        self.tracking_uri = self.client.tracking_uri
        self.experiment_name = experiment or settings.experiment
        self.artifact_location = _artifact_location(settings.mlflow_artifact_location)
        self.experiment_id = self._experiment_id(self.experiment_name)

    @contextmanager
    def run(
        self,
        name: str | None = None,
        *,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Iterator[RunLogger]:
        """Open a run; end it FINISHED, or FAILED (KILLED on Ctrl-C) if the block raises."""
        run_tags = {**_provenance_tags(), **(tags or {})}
        if parent_run_id:
            run_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=run_tags)
        logger = RunLogger(self.client, run.info.run_id)
        try:
            yield logger
        except BaseException as exc:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            logger.end(status, error=f"{type(exc).__name__}: {exc}")
            raise
        logger.end("FINISHED")

    def _experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(name, artifact_location=self.artifact_location)
            except MlflowException:  # created meanwhile by another process
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            self.client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id


class RunLogger:
    """Logs to one open run. Metrics are sent in batches, one call per ``log_metrics``."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        """Log parameters (values rendered as text, cut to MLflow's length limit)."""
        items = [Param(key, _param_text(value)) for key, value in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Log metrics at one ``step`` in a single request."""
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set run tags."""
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        """Store ``data`` as a JSON artifact of the run."""
        self.client.log_dict(self.run_id, data, artifact_file)

    def log_dataset(self, dataset: Dataset, context: str = "training") -> None:
        """Record the dataset as a run input (name, fingerprint, source, schema, rows)."""
        description = dataset.describe()
        self.log_params(
            {
                "dataset.source": description["source"],
                "dataset.format": description["format"],
                "dataset.target": description["target"],
                "dataset.n_rows": description["n_rows"],
                "dataset.n_blocks": description["n_blocks"],
                "dataset.n_features": len(description["features"]),
                "dataset.fingerprint": description["fingerprint"],
            }
        )
        self.log_dict(description, "dataset.json")
        entity = MlflowDataset(
            name=Path(str(description["source"]).rstrip("/")).name or "dataset",
            digest=description["fingerprint"][:36],
            source_type="scaleml",
            source=json.dumps({"paths": description["paths"][:50], "format": dataset.format}),
            schema=json.dumps({"columns": description["schema"], "target": dataset.target}),
            profile=json.dumps({"n_rows": description["n_rows"], "n_blocks": dataset.n_blocks}),
        )
        inputs = [DatasetInput(entity, tags=[InputTag(key="mlflow.data.context", value=context)])]
        for attempt in range(_DATASET_ATTEMPTS):
            try:
                self.client.log_inputs(self.run_id, datasets=inputs)
                return
            except MlflowException:
                # MLflow inserts a dataset row after checking it is absent: two runs logging
                # the same dataset to one experiment at once collide on its unique key, and a
                # retry finds the row the other one created.
                if attempt == _DATASET_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def log_sklearn_model(self, estimator: Any, input_example: Any, name: str = "model") -> str:
        """Log a scikit-learn model with its signature and an input example; return its URI."""
        signature = infer_signature(input_example, estimator.predict(input_example))
        with mlflow.start_run(run_id=self.run_id):
            info = mlflow.sklearn.log_model(
                estimator,
                name=name,
                signature=signature,
                input_example=input_example,
                pip_requirements=_pip_requirements(mlflow.sklearn, "skops"),
            )
        self.set_tags({"scaleml.model_uri": info.model_uri})
        return info.model_uri

    def log_native_model(
        self, model: Any, flavor: str, input_example: Any, name: str = "model"
    ) -> str:
        """Log a model with MLflow's native ``flavor`` (``"xgboost"`` or ``"lightgbm"``), its
        signature and an input example; return its URI."""
        if flavor not in ("xgboost", "lightgbm"):
            raise ValueError(f"flavor must be 'xgboost' or 'lightgbm', got {flavor!r}")
        module = importlib.import_module(f"mlflow.{flavor}")
        signature = infer_signature(input_example, model.predict(input_example))
        with mlflow.start_run(run_id=self.run_id):
            info = module.log_model(
                model,
                name=name,
                signature=signature,
                input_example=input_example,
                pip_requirements=_pip_requirements(module),
            )
        self.set_tags({"scaleml.model_uri": info.model_uri})
        return info.model_uri

    def end(self, status: str, *, error: str | None = None) -> None:
        """End the run with ``status`` (FINISHED, FAILED or KILLED)."""
        if error:
            self.set_tags({"scaleml.error": error[:5000]})
        self.client.set_terminated(self.run_id, status=status)


def configure(settings: Settings | None = None) -> MlflowClient:
    """Point MLflow at ``settings.mlflow_tracking_uri`` (when set) and return a client."""
    settings = settings or get_settings()
    if settings.mlflow_tracking_uri:
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(mlflow.get_tracking_uri(), registry_uri=mlflow.get_registry_uri())


def _pip_requirements(flavor: Any, *extra: str) -> list[str]:
    """The flavor's own pinned requirements (and ``extra`` packages, pinned as installed).

    Given explicitly, so MLflow does not infer them by loading the model in a subprocess:
    that took 3-7 s per model and listed whatever the logging process had imported.
    """
    return [
        *flavor.get_default_pip_requirements(),
        *(f"{package}=={metadata.version(package)}" for package in extra),
    ]


def _provenance_tags() -> dict[str, str]:
    tags = {"scaleml.version": scaleml.__version__}
    commit = _git_commit()
    if commit:
        tags["scaleml.git_commit"] = commit
    return tags


def _git_commit() -> str | None:
    source = Path(scaleml.__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def class_path(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__}.{cls.__qualname__}"


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_PARAM_LENGTH]


def _artifact_location(location: str | None) -> str | None:
    """A directory as an absolute ``file:`` URI (MLflow keeps it as given); URIs unchanged."""
    if location is None or "://" in location:
        return location
    return Path(location).expanduser().resolve().as_uri()
