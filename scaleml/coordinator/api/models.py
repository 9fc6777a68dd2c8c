"""The coordinator's response models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from scaleml.coordinator.store import EventRow, JobRow

JobState = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]


class JobOut(BaseModel):
    """A job as the API shows it."""

    id: str
    kind: str
    state: JobState
    experiment: str
    spec: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float | None = Field(default=None, description="0..1, when known.")
    message: str | None = None
    best_score: float | None = Field(default=None, description="Best validation score so far.")
    mlflow_experiment_id: str | None = None
    mlflow_run_id: str | None = None
    model_uri: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    owner: str | None = Field(default=None, description="The coordinator replica running it.")
    cancel_requested: bool = False
    attempt: int = Field(default=1, description="The attempt running (or next to run), from 1.")
    max_attempts: int = Field(default=1, description="Attempts allowed if coordinators die.")

    @classmethod
    def of(cls, row: JobRow) -> JobOut:
        """The API view of a stored job."""
        return cls(
            id=row.id,
            kind=row.kind,
            state=row.state,  # type: ignore[arg-type]
            experiment=row.experiment,
            spec=_redacted(row.spec),
            created_at=_time(row.created_at),
            started_at=_time(row.started_at),
            finished_at=_time(row.finished_at),
            progress=row.progress,
            message=row.message,
            best_score=row.best_score,
            mlflow_experiment_id=row.mlflow_experiment_id,
            mlflow_run_id=row.mlflow_run_id,
            model_uri=row.model_uri,
            result=row.result,
            error=row.error,
            owner=row.owner,
            cancel_requested=bool(row.cancel_requested),
            attempt=row.attempt,
            max_attempts=row.max_attempts,
        )


class JobPage(BaseModel):
    """A page of jobs, newest first."""

    items: list[JobOut]
    total: int = Field(description="Jobs matching the filter, on every page.")
    offset: int
    limit: int


class EventOut(BaseModel):
    """One event of a job: ``state`` (a state change), ``progress``, or ``cancel_requested``."""

    id: int
    job_id: str
    at: datetime
    type: str
    data: dict[str, Any]

    @classmethod
    def of(cls, row: EventRow) -> EventOut:
        """The API view of a stored event."""
        return cls(id=row.id, job_id=row.job_id, at=_time(row.at), type=row.type, data=row.data)


class Health(BaseModel):
    """Readiness: the database answers, the loop runs and the Dask cluster is reachable."""

    status: Literal["ok", "unavailable"]
    database: bool
    dask: bool
    replica: str
    running_jobs: int
    max_running_jobs: int
    error: str | None = None


def _redacted(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec without the values of the dataset's ``storage_options`` (credentials)."""
    dataset = spec.get("dataset")
    if not isinstance(dataset, dict) or not dataset.get("storage_options"):
        return spec
    hidden = dict.fromkeys(dataset["storage_options"], "***")
    return {**spec, "dataset": {**dataset, "storage_options": hidden}}


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)
