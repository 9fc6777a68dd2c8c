"""``/jobs/{id}/events``: a job's events as server-sent events, streamed while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from scaleml.coordinator.api.deps import JobDep, StoreDep, require_token
from scaleml.coordinator.api.models import EventOut
from scaleml.coordinator.store import TERMINAL_STATES

router = APIRouter(prefix="/jobs", tags=["events"], dependencies=[Depends(require_token)])

_POLL_S = 0.25
MAX_EVENT_ID = 2**31 - 1
"""The largest event id both job stores can hold (PostgreSQL's ``integer``)."""


def _cursor(
    after: Annotated[
        int, Query(ge=0, le=MAX_EVENT_ID, description="Only events after this id.")
    ] = 0,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> int:
    """Where the stream starts: after ``?after=`` or the ``Last-Event-ID`` header (422 when
    out of range; a header that is not a number is ignored, as browsers may send anything)."""
    try:
        header = int(last_event_id or 0)
    except ValueError:
        header = 0
    if header > MAX_EVENT_ID:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "type": "less_than_equal",
                    "loc": ["header", "last-event-id"],
                    "msg": f"Input should be less than or equal to {MAX_EVENT_ID}",
                }
            ],
        )
    return max(after, header, 0)


@router.get("/{job_id}/events", response_class=EventSourceResponse, response_model=EventOut)
async def job_events(
    job: JobDep,
    store: StoreDep,
    cursor: Annotated[int, Depends(_cursor)],
    follow: Annotated[
        bool, Query(description="Keep streaming until the job ends (false: what exists now).")
    ] = True,
) -> AsyncIterator[ServerSentEvent]:
    """Stream the job's events (``state``, ``progress``, ``cancel_requested``) as they are
    stored, each with its id (reconnect with ``Last-Event-ID`` to resume); the stream ends
    when the job has ended and every event was sent."""
    while True:
        current = await run_in_threadpool(store.get, job.id)
        ended = current is None or current.state in TERMINAL_STATES
        events = await run_in_threadpool(store.events, job.id, cursor)
        for event in events:
            cursor = event.id
            out = EventOut.of(event)
            yield ServerSentEvent(data=out, event=event.type, id=str(event.id))
        if events:
            continue
        if ended or not follow:
            return
        await asyncio.sleep(_POLL_S)
