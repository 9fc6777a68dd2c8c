"""``/health``: readiness of this coordinator replica (never behind the token)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from starlette.concurrency import run_in_threadpool

from scaleml.coordinator.api.deps import CoordinatorDep
from scaleml.coordinator.api.models import Health

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready."}},
)
async def health(coordinator: CoordinatorDep, response: Response) -> Health:
    """200 when the job store answers, the loop runs and the Dask cluster is reachable;
    503 otherwise (with what is missing)."""
    database = await run_in_threadpool(coordinator.store.ping)
    ready = database and coordinator.ready
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if ready else "unavailable",
        database=database,
        dask=coordinator.dask_error is None and coordinator.ready,
        replica=coordinator.replica,
        running_jobs=len(coordinator.running_jobs),
        max_running_jobs=coordinator.max_running,
        error=coordinator.dask_error,
    )
