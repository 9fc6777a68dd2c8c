"""MLflow runs: a :class:`Tracker` opens runs in one experiment, a :class:`RunLogger` logs to one.

A run that raises is ended FAILED (KILLED on Ctrl-C), never left RUNNING.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
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

from scaleml.config import Settings, get_settings
from scaleml.dashboard._events import mlflow_run
from scaleml.data import Dataset
from scaleml.tracking._provenance import provenance_tags, schema_hash

_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value
_DATASET_ATTEMPTS = 3


class Tracker:
    """Opens MLflow runs in one experiment of one tracking store.

    Args:
        settings: scaleml settings (tracking URI, experiment); read from the environment when
            omitted. An unset tracking URI leaves MLflow's own default in force.
        experiment: overrides ``settings.experiment``.
        tags: tags set on every run this tracker opens, a search's trial runs included.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        experiment: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.settings = settings
        self.tags = dict(tags or {})
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
        """Open a run; end it FINISHED, or FAILED (KILLED on Ctrl-C) if the block raises.

        Tag values are sent as text (MLflow's REST store refuses anything else)."""
        run_tags = {
            **provenance_tags(),
            **{k: str(v) for k, v in {**self.tags, **(tags or {})}.items()},
        }
        if parent_run_id:
            run_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=run_tags)
        logger = RunLogger(self.client, run.info.run_id)
        try:
            if parent_run_id:
                yield logger
            else:  # the dashboard's pages link the work inside to this run
                with mlflow_run(run.info.run_id, self.experiment_id, self.tracking_uri):
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
                "dataset.schema_hash": schema_hash(description["schema"], dataset.target),
            }
        )
        self.set_tags({"scaleml.dataset_fingerprint": description["fingerprint"]})
        self.log_dict(description, "dataset.json")
        self.log_dataset_input(dataset, context, description)

    def log_dataset_input(
        self, dataset: Dataset, context: str, description: dict[str, Any] | None = None
    ) -> None:
        """Record the dataset as a run input only (no parameters: a run that already logged
        a dataset keeps its own), tagged with ``context`` (``training``, ``evaluation``)."""
        description = description or dataset.describe()
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
        with _resumed(self.run_id):
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
        with _resumed(self.run_id):
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
        with quiet_run_links():
            self.client.set_terminated(self.run_id, status=status)


@contextmanager
def _resumed(run_id: str) -> Iterator[None]:
    """``mlflow.start_run(run_id=...)`` for a run of any experiment. MLflow refuses to resume
    a run outside the experiment a caller chose with ``mlflow.set_experiment`` (process-wide
    state), so that choice is set aside while scaleml logs to its own run, then put back."""
    from mlflow.tracking import fluent

    chosen = fluent._active_experiment_id
    fluent._active_experiment_id = None
    try:
        with quiet_run_links(), mlflow.start_run(run_id=run_id):
            yield
    finally:
        fluent._active_experiment_id = chosen


_QUIET_VARIABLE = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: str | None = None


@contextmanager
def quiet_run_links() -> Iterator[None]:
    """Keep MLflow from printing "View run ... / View experiment ..." to standard output when
    a run ends on a tracking server (MLflow's own switch, an environment variable read at each
    run's end; set while any scaleml run is ending, then put back as it was)."""
    global _quiet_depth, _quiet_saved
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = os.environ.get(_QUIET_VARIABLE)
            os.environ[_QUIET_VARIABLE] = "true"
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                if _quiet_saved is None:
                    os.environ.pop(_QUIET_VARIABLE, None)
                else:
                    os.environ[_QUIET_VARIABLE] = _quiet_saved


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
