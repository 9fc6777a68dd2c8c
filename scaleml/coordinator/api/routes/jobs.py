"""``/jobs``: submit, list, show and cancel jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import RootModel

from scaleml.coordinator._access import SpecRefused, check_spec
from scaleml.coordinator.api.deps import CoordinatorDep, JobDep, StoreDep, TokenDep, require_token
from scaleml.coordinator.api.models import JobOut, JobPage, JobState
from scaleml.coordinator.specs import JobSpec
from scaleml.coordinator.store import TERMINAL_STATES

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(require_token)])


class JobSpecBody(RootModel[JobSpec]):
    """A job spec: ``kind`` is ``train``, ``boost`` or ``search``."""


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobOut,
    responses={
        403: {"description": "The token may not force an alias move (promote: always)."},
        413: {"description": "The body is larger than SCALEML_COORDINATOR_MAX_BODY_BYTES."},
    },
)
def submit_job(
    body: JobSpecBody, coordinator: CoordinatorDep, token: TokenDep, response: Response
) -> JobOut:
    """Queue a job; it runs when a coordinator has a free slot. A dataset outside the data
    roots, or a model name jobs may not register, gets 422 naming the field."""
    spec = body.root
    try:
        check_spec(spec, coordinator.settings, token)
    except SpecRefused as exc:
        kind = "forbidden" if exc.status == 403 else "value_error"
        error = {"type": kind, "loc": ["body", *exc.loc], "msg": exc.message}
        raise HTTPException(exc.status, detail=[error]) from None
    experiment = spec.experiment or coordinator.settings.experiment
    attempts = spec.max_attempts or coordinator.settings.coordinator_max_attempts
    job = coordinator.store.add(
        spec.kind, spec.model_dump(mode="json"), experiment, max_attempts=attempts
    )
    coordinator.wake()
    response.headers["Location"] = f"/jobs/{job.id}"
    return JobOut.of(job)


@router.get("", response_model=JobPage)
def list_jobs(
    store: StoreDep,
    state: Annotated[list[JobState] | None, Query(description="Only jobs in these states.")] = None,
    experiment: Annotated[str | None, Query(max_length=500, pattern=r"^[^\x00]*$")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobPage:
    """Jobs, newest first, filtered by state and experiment, one page at a time."""
    page = store.list(states=state or (), experiment=experiment, offset=offset, limit=limit)
    return JobPage(
        items=[JobOut.of(job) for job in page.items], total=page.total, offset=offset, limit=limit
    )


@router.get("/{job_id}", response_model=JobOut)
def show_job(job: JobDep) -> JobOut:
    """A job: state, timestamps, progress, best score so far, MLflow ids, model URI, error."""
    return JobOut.of(job)


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job: JobDep, coordinator: CoordinatorDep) -> JobOut:
    """Cancel a job: a QUEUED job is CANCELLED at once; a RUNNING one stops its Dask work,
    its MLflow run ends KILLED and it becomes CANCELLED (``cancel_requested`` meanwhile).
    An ended job, a cancelled one included, cannot be cancelled (409)."""
    if job.state in TERMINAL_STATES:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"job {job.id} already ended {job.state}"
        )
    after = coordinator.store.request_cancel(job.id)
    if after is None:  # pragma: no cover - jobs are never deleted
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no job with id {job.id!r}")
    if after.state in TERMINAL_STATES and not after.cancel_requested:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"job {job.id} already ended {after.state}"
        )
    coordinator.wake()
    return JobOut.of(after)
