"""The job store's tables (jobs, events, schema version), how values are written to them, and
how a table of an earlier schema is brought up to date."""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    """One job: its spec, state, holder, progress and outcome."""

    __tablename__ = "scaleml_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    experiment: Mapped[str] = mapped_column(String(500), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, default=None)
    finished_at: Mapped[float | None] = mapped_column(Float, default=None)
    owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires: Mapped[float | None] = mapped_column(Float, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float | None] = mapped_column(Float, default=None)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    best_score: Mapped[float | None] = mapped_column(Float, default=None)
    mlflow_experiment_id: Mapped[str | None] = mapped_column(String(100), default=None)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(100), default=None)
    model_uri: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Schema 2: the attempt running (or to run) and the bound; a job stored by schema 1 has 1/1.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    max_attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class EventRow(Base):
    """One event of a job (state change or progress), in order of ``id``."""

    __tablename__ = "scaleml_job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("scaleml_jobs.id"), index=True)
    at: Mapped[float] = mapped_column(Float)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class SchemaVersion(Base):
    __tablename__ = "scaleml_schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)


_ADDED_COLUMNS = {  # column -> DDL, added to a job table created by an earlier schema
    "attempt": "INTEGER NOT NULL DEFAULT 1",
    "max_attempts": "INTEGER NOT NULL DEFAULT 1",
}


def add_missing_columns(engine: Engine) -> list[str]:
    """Bring a job table created by an earlier scaleml up to this schema (``ALTER TABLE ...
    ADD COLUMN``, on SQLite and PostgreSQL alike); return the columns added."""
    present = {column["name"] for column in inspect(engine).get_columns(JobRow.__tablename__)}
    missing = [name for name in _ADDED_COLUMNS if name not in present]
    with engine.begin() as conn:
        for name in missing:
            conn.execute(
                text(f"ALTER TABLE {JobRow.__tablename__} ADD COLUMN {name} {_ADDED_COLUMNS[name]}")
            )
    return missing


def new_event(job_id: str, type: str, data: dict[str, Any], at: float) -> EventRow:
    """A new event row (its data made plain JSON)."""
    return EventRow(job_id=job_id, at=at, type=type, data=plain_json(data))


def plain_json(data: Any) -> Any:
    """Plain JSON: NaN and infinities (which PostgreSQL's json refuses) become null."""
    return json.loads(json.dumps(data, default=str), parse_constant=lambda _: None)


def columns(values: dict[str, Any]) -> dict[str, Any]:
    """Column values fit for both databases (JSON made plain, a NaN score is unknown)."""
    out = dict(values)
    if "result" in out and out["result"] is not None:
        out["result"] = plain_json(out["result"])
    for name in ("best_score", "progress"):
        value = out.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            out[name] = None
    return out


def with_earlier_attempts(
    session: Session, job_id: str, reason: str, attempt: int | None = None
) -> str:
    """``reason`` prefixed with the reasons of the job's earlier attempts (from its
    ``retrying`` events), when it had any: ``attempt 1: ...; attempt 2: ...``."""
    earlier = session.scalars(
        select(EventRow)
        .where(EventRow.job_id == job_id, EventRow.type == "retrying")
        .order_by(EventRow.id)
    ).all()
    if not earlier:
        return reason
    if attempt is None:
        attempt = int(earlier[-1].data.get("attempt", len(earlier))) + 1
    parts = [f"attempt {e.data.get('attempt')}: {e.data.get('error')}" for e in earlier]
    return "; ".join([*parts, f"attempt {attempt}: {reason}"])
