"""Dependencies of the coordinator's routes: the coordinator, its store, the token, a job."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scaleml.coordinator.service import Coordinator
from scaleml.coordinator.store import JobRow, JobStore

_bearer = HTTPBearer(auto_error=False, description="SCALEML_COORDINATOR_TOKEN, when set.")


def get_coordinator(request: Request) -> Coordinator:
    """The app's coordinator."""
    return request.app.state.coordinator


CoordinatorDep = Annotated[Coordinator, Depends(get_coordinator)]


def get_store(coordinator: CoordinatorDep) -> JobStore:
    """The coordinator's job store."""
    return coordinator.store


StoreDep = Annotated[JobStore, Depends(get_store)]


def require_token(
    coordinator: CoordinatorDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """Refuse the request (401) unless it carries the bearer token (or one of the force
    tokens), when one is set; return the token the request carries."""
    settings = coordinator.settings
    given = credentials.credentials if credentials is not None else None
    if settings.coordinator_token is None:
        return given
    accepted = [settings.coordinator_token, *settings.coordinator_force_tokens]
    sent = (given or "").encode()
    if not any([secrets.compare_digest(sent, token.encode()) for token in accepted]):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token: send 'Authorization: Bearer <token>' with "
            "the coordinator's SCALEML_COORDINATOR_TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return given


TokenDep = Annotated[str | None, Depends(require_token)]
"""The bearer token of the request (checked)."""


def get_job(
    store: StoreDep,
    job_id: Annotated[
        str, Path(min_length=1, max_length=64, pattern=r"^[^\x00]*$", description="The job's id.")
    ],
) -> JobRow:
    """The job named in the path, or 404."""
    job = store.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no job with id {job_id!r}")
    return job


JobDep = Annotated[JobRow, Depends(get_job)]
