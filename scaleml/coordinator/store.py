"""The job store: jobs and their events in a database through SQLAlchemy.

A SQLite file by default, PostgreSQL by URL (``postgresql://`` uses psycopg 3). The schema is
created on start (``create_all``) and its version recorded in ``scaleml_schema_version``; a
database written by a newer scaleml is refused rather than misread.

Claims are row-level and atomic: ``UPDATE jobs SET state='RUNNING', owner=... WHERE id=...
AND state='QUEUED'`` succeeds for exactly one replica (rowcount 1), on SQLite and PostgreSQL.
A RUNNING job carries its holder (``owner``) and a lease (``lease_expires``) that the holder
renews with every heartbeat; a job whose lease ran out belongs to a dead coordinator.
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
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from scaleml.coordinator._tables import Base, EventRow, JobRow, SchemaVersion, columns, new_event
from scaleml.errors import ConfigError

SCHEMA_VERSION = 1
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
        self.url = _normalise(url)
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.url.startswith("sqlite"):
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine: Engine = create_engine(self.url, **options)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._create_schema()

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

    def add(self, kind: str, spec: dict[str, Any], experiment: str) -> JobRow:
        """Store a new QUEUED job and its first event; return it."""
        now = time.time()
        job = JobRow(
            id=uuid.uuid4().hex,
            kind=kind,
            spec=spec,
            experiment=experiment,
            state="QUEUED",
            created_at=now,
            cancel_requested=False,
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

    def claim_next(self, owner: str, lease_s: float) -> JobRow | None:
        """Claim the oldest QUEUED job for ``owner`` (atomically: one replica wins a job)."""
        with self.session() as session:
            candidates = session.scalars(
                select(JobRow.id)
                .where(JobRow.state == "QUEUED")
                .order_by(JobRow.created_at, JobRow.id)
                .limit(8)
            ).all()
        for job_id in candidates:
            now = time.time()
            with self.session() as session:
                claimed = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.state == "QUEUED")
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
                session.add(new_event(job_id, "state", {"state": "RUNNING", "owner": owner}, now))
            return self.get(job_id)
        return None

    def heartbeat(self, owner: str, job_ids: Sequence[str], lease_s: float) -> None:
        """Renew the lease of the jobs ``job_ids`` that ``owner`` is running."""
        if not job_ids:
            return
        with self.session() as session:
            session.execute(
                update(JobRow)
                .where(
                    JobRow.owner == owner, JobRow.state == "RUNNING", JobRow.id.in_(list(job_ids))
                )
                .values(lease_expires=time.time() + lease_s)
            )

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

    def fail_expired(self) -> list[str]:
        """FAIL every RUNNING job whose lease ran out ("coordinator restarted"); their ids."""
        now = time.time()
        with self.session() as session:
            expired = session.execute(
                select(JobRow.id, JobRow.owner).where(
                    JobRow.state == "RUNNING", JobRow.lease_expires < now
                )
            ).all()
        failed = []
        for job_id, owner in expired:
            with self.session() as session:
                done = session.execute(
                    update(JobRow)
                    .where(
                        JobRow.id == job_id, JobRow.state == "RUNNING", JobRow.lease_expires < now
                    )
                    .values(state="FAILED", finished_at=now, error=RESTARTED, lease_expires=None)
                )
                if done.rowcount == 1:
                    data = {"state": "FAILED", "error": RESTARTED, "owner": owner}
                    session.add(new_event(job_id, "state", data, now))
                    failed.append(job_id)
        return failed

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

    # -- schema -------------------------------------------------------------------------------

    def _create_schema(self) -> None:
        for attempt in range(3):  # replicas starting together race to create the tables
            try:
                self._create_tables()
                return
            except (IntegrityError, ProgrammingError, OperationalError):
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def _create_tables(self) -> None:
        Base.metadata.create_all(self.engine)
        with self.session() as session:
            found = session.scalar(select(func.max(SchemaVersion.version)))
            if found is None:
                session.add(SchemaVersion(version=SCHEMA_VERSION))
            elif found > SCHEMA_VERSION:
                raise ConfigError(
                    f"SCALEML_COORDINATOR_DB holds job store schema version {found}, newer than "
                    f"this scaleml's {SCHEMA_VERSION}; upgrade scaleml"
                )


def _normalise(url: str) -> str:
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError and others
        raise ConfigError(f"SCALEML_COORDINATOR_DB: not a database URL: {url!r} ({exc})") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)
