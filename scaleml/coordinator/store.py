"""The job store: jobs and their events in a database through SQLAlchemy.

A SQLite file by default, PostgreSQL by URL (``postgresql://`` uses psycopg 3). The schema is
created on start (``create_all``) and its version recorded in ``scaleml_schema_version``; a
database written by an earlier scaleml gets the columns it lacks (``ALTER TABLE ... ADD
COLUMN``), one written by a newer scaleml is refused rather than misread.

Claims are row-level and atomic: ``UPDATE jobs SET state='RUNNING', owner=... WHERE id=...
AND state='QUEUED'`` succeeds for exactly one replica (rowcount 1), on SQLite and PostgreSQL.
A RUNNING job carries its holder (``owner``) and a lease (``lease_expires``) that the holder
renews with every heartbeat; a job whose lease ran out belongs to a dead coordinator. Such an
attempt is ended: the job is re-queued as its next attempt while ``attempt < max_attempts``
(a ``retrying`` event), else FAILED with every attempt's reason; a job whose cancel was
requested is CANCELLED instead (cancel is final).
Timestamps are UNIX seconds (floats) from the coordinators' clocks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from scaleml.coordinator._schema import create_schema, mask_url, normalise_url
from scaleml.coordinator._tables import (
    EventRow,
    JobRow,
    columns,
    new_event,
    with_earlier_attempts,
)
from scaleml.errors import ConfigError

STATES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
RESTARTED = "coordinator restarted"
"""The error of a job whose coordinator died while it ran (see the README, 'Restarts')."""


@dataclass(frozen=True)
class Page:
    """A page of jobs and the number of jobs matching the filter."""

    items: list[JobRow]
    total: int


class JobStore:
    """Jobs and events in the database at ``url`` (created or checked on construction).

    Args:
        url: a SQLAlchemy URL; ``postgresql://`` is read as ``postgresql+psycopg://``.

    Raises:
        ConfigError: the URL is invalid or the database holds a newer schema.
    """

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.url.startswith("sqlite"):
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine: Engine = create_engine(self.url, **options)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        try:
            create_schema(self.engine)
        except (OperationalError, ProgrammingError) as exc:
            self.engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ConfigError(
                f"SCALEML_COORDINATOR_DB: cannot open the job store at {mask_url(self.url)}: "
                f"{reason.replace(self.url, mask_url(self.url))}"
            ) from None

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions.begin() as session:
            yield session

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self.session() as session:
                session.execute(select(1))
        except Exception:  # any failure means "not ready"
            return False
        return True

    # -- jobs ---------------------------------------------------------------------------------

    def add(
        self, kind: str, spec: dict[str, Any], experiment: str, *, max_attempts: int = 1
    ) -> JobRow:
        """Store a new QUEUED job (its first attempt of ``max_attempts``) and its first event;
        return it."""
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        now = time.time()
        job = JobRow(
            id=uuid.uuid4().hex,
            kind=kind,
            spec=spec,
            experiment=experiment,
            state="QUEUED",
            created_at=now,
            cancel_requested=False,
            attempt=1,
            max_attempts=max_attempts,
        )
        with self.session() as session:
            session.add(job)
            session.flush()
            session.add(new_event(job.id, "state", {"state": "QUEUED"}, now))
        return job

    def get(self, job_id: str) -> JobRow | None:
        """The job ``job_id``, or None."""
        with self.session() as session:
            return session.get(JobRow, job_id)

    def list(
        self,
        *,
        states: Sequence[str] = (),
        experiment: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page:
        """Jobs, newest first, filtered by state(s) and experiment."""
        query = select(JobRow)
        if states:
            query = query.where(JobRow.state.in_(list(states)))
        if experiment is not None:
            query = query.where(JobRow.experiment == experiment)
        with self.session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(JobRow.created_at.desc(), JobRow.id).offset(offset).limit(limit)
            ).all()
        return Page(list(rows), int(total))

    def count(self, state: str, owner: str | None = None) -> int:
        """How many jobs are in ``state`` (held by ``owner``, if given)."""
        query = select(func.count()).select_from(JobRow).where(JobRow.state == state)
        if owner is not None:
            query = query.where(JobRow.owner == owner)
        with self.session() as session:
            return int(session.scalar(query) or 0)

    def claim_next(self, owner: str, lease_s: float, exclude: Sequence[str] = ()) -> JobRow | None:
        """Claim the oldest QUEUED job for ``owner`` (atomically: one replica wins a job),
        skipping the ids in ``exclude`` (the attempts ``owner`` is still winding down)."""
        query = select(JobRow.id, JobRow.attempt).where(JobRow.state == "QUEUED")
        if exclude:
            query = query.where(JobRow.id.notin_(list(exclude)))
        with self.session() as session:
            candidates = session.execute(
                query.order_by(JobRow.created_at, JobRow.id).limit(8)
            ).all()
        for job_id, attempt in candidates:
            now = time.time()
            with self.session() as session:
                claimed = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.state == "QUEUED", JobRow.attempt == attempt)
                    .values(
                        state="RUNNING",
                        owner=owner,
                        started_at=now,
                        lease_expires=now + lease_s,
                    )
                    .execution_options(synchronize_session=False)
                )
                if claimed.rowcount != 1:
                    continue  # another replica (or a cancel) got there first
                data = {"state": "RUNNING", "owner": owner, "attempt": attempt}
                session.add(new_event(job_id, "state", data, now))
            return self.get(job_id)
        return None

    def heartbeat(self, owner: str, job_ids: Sequence[str], lease_s: float) -> list[str]:
        """Renew the lease of the jobs ``job_ids`` that ``owner`` is running; return the ids it
        still holds (a job missing from them was ended or re-queued without it)."""
        if not job_ids:
            return []
        held = (JobRow.owner == owner, JobRow.state == "RUNNING", JobRow.id.in_(list(job_ids)))
        with self.session() as session:
            session.execute(update(JobRow).where(*held).values(lease_expires=time.time() + lease_s))
            return list(session.scalars(select(JobRow.id).where(*held)).all())

    def cancel_requests(self, owner: str) -> list[str]:
        """Ids of jobs ``owner`` runs whose cancellation was asked for."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(JobRow.id).where(
                        JobRow.owner == owner,
                        JobRow.state == "RUNNING",
                        JobRow.cancel_requested.is_(True),
                    )
                ).all()
            )

    def request_cancel(self, job_id: str) -> JobRow | None:
        """Cancel a QUEUED job at once, or flag a RUNNING one for its holder to stop.

        Returns the job afterwards (None if unknown); a finished job is left as it is.
        """
        now = time.time()
        with self.session() as session:
            done = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == "QUEUED")
                .values(state="CANCELLED", finished_at=now, cancel_requested=True)
            )
            if done.rowcount == 1:
                session.add(new_event(job_id, "state", {"state": "CANCELLED"}, now))
            else:
                flagged = session.execute(
                    update(JobRow)
                    .where(
                        JobRow.id == job_id,
                        JobRow.state == "RUNNING",
                        JobRow.cancel_requested.is_(False),
                    )
                    .values(cancel_requested=True)
                )
                if flagged.rowcount == 1:
                    session.add(new_event(job_id, "cancel_requested", {}, now))
        return self.get(job_id)

    def update_running(self, job_id: str, owner: str, **values: Any) -> bool:
        """Set fields of a job ``owner`` still holds; False if it no longer does."""
        with self.session() as session:
            done = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.owner == owner, JobRow.state == "RUNNING")
                .values(**columns(values))
            )
        return done.rowcount == 1

    def report(
        self, job_id: str, owner: str, type: str, data: dict[str, Any], **values: Any
    ) -> bool:
        """Append an event to a job ``owner`` holds and set fields of it, in one transaction."""
        now = time.time()
        with self.session() as session:
            done = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.owner == owner, JobRow.state == "RUNNING")
                .values(**columns(values))
            )
            if done.rowcount != 1:
                return False
            session.add(new_event(job_id, type, data, now))
        return True

    def finish(
        self, job_id: str, owner: str, state: str, *, error: str | None = None, **values: Any
    ) -> bool:
        """End a job ``owner`` holds in a terminal ``state``; False if it no longer holds it."""
        if state not in TERMINAL_STATES:
            raise ValueError(f"state must be one of {sorted(TERMINAL_STATES)}, got {state!r}")
        now = time.time()
        with self.session() as session:
            if error and state == "FAILED":
                error = with_earlier_attempts(session, job_id, error)
            done = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.owner == owner, JobRow.state == "RUNNING")
                .values(
                    state=state,
                    finished_at=now,
                    error=error,
                    lease_expires=None,
                    **columns(values),
                )
            )
            if done.rowcount != 1:
                return False
            data: dict[str, Any] = {"state": state}
            if error:
                data["error"] = error
            session.add(new_event(job_id, "state", data, now))
        return True

    def expired(self) -> list[JobRow]:
        """RUNNING jobs whose lease ran out: their holder died (or lost the database)."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(JobRow).where(
                        JobRow.state == "RUNNING", JobRow.lease_expires < time.time()
                    )
                ).all()
            )

    def end_attempt(self, job_id: str, attempt: int, reason: str = RESTARTED) -> str | None:
        """End attempt ``attempt`` of a job whose lease ran out: re-queue the job as its next
        attempt (events ``retrying`` and ``state`` QUEUED) while attempts remain, else FAIL it
        with every attempt's reason; CANCEL it if its cancel was requested.

        Returns the job's new state, or None if the attempt was not expired or is already
        ended (another replica got there first, or its holder renewed its lease)."""
        now = time.time()
        with self.session() as session:
            job = session.get(JobRow, job_id)
            if job is None:
                return None
            owner, limit = job.owner, job.max_attempts
            session.expunge(job)
            expired = (
                JobRow.id == job_id,
                JobRow.state == "RUNNING",
                JobRow.attempt == attempt,
                JobRow.lease_expires < now,
            )
            if job.cancel_requested:
                state, values = "CANCELLED", {"finished_at": now}
            elif attempt < limit:
                state = "QUEUED"
                values = {
                    "attempt": attempt + 1,
                    "owner": None,
                    "started_at": None,
                    "progress": None,
                    "best_score": None,
                    "mlflow_run_id": None,
                    "message": f"attempt {attempt} of {limit} ended: {reason}; retrying",
                }
            else:
                state = "FAILED"
                values = {
                    "finished_at": now,
                    "error": with_earlier_attempts(session, job_id, reason, attempt),
                }
            done = session.execute(
                update(JobRow).where(*expired).values(state=state, lease_expires=None, **values)
            )
            if done.rowcount != 1:
                return None
            if state == "QUEUED":
                retry = {"attempt": attempt, "max_attempts": limit, "error": reason, "owner": owner}
                session.add(new_event(job_id, "retrying", retry, now))
                session.add(
                    new_event(job_id, "state", {"state": state, "attempt": attempt + 1}, now)
                )
            else:
                data = {"state": state, "owner": owner, "attempt": attempt}
                if state == "FAILED":
                    data["error"] = values["error"]
                session.add(new_event(job_id, "state", data, now))
        return state

    def fail_expired(self) -> list[str]:
        """End every attempt whose lease ran out (see :meth:`end_attempt`); return the ids of
        the jobs re-queued, FAILED or CANCELLED by this call."""
        return [
            job.id for job in self.expired() if self.end_attempt(job.id, job.attempt) is not None
        ]

    # -- events -------------------------------------------------------------------------------

    def addnew_event(self, job_id: str, type: str, data: dict[str, Any]) -> None:
        """Append an event to a job."""
        with self.session() as session:
            session.add(new_event(job_id, type, data, time.time()))

    def events(self, job_id: str, after: int = 0, limit: int = 500) -> list[EventRow]:
        """A job's events with an id greater than ``after``, oldest first."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(EventRow)
                    .where(EventRow.job_id == job_id, EventRow.id > after)
                    .order_by(EventRow.id)
                    .limit(limit)
                ).all()
            )
