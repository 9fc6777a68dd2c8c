"""The job store's database: its URL (read, normalised, masked for messages) and its schema
(created on start, its version recorded; older stores get the columns they lack, newer ones
are refused)."""

from __future__ import annotations

import re
import time

from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from scaleml.coordinator._tables import Base, SchemaVersion, add_missing_columns
from scaleml.errors import ConfigError

SCHEMA_VERSION = 2  # 2: jobs have attempt and max_attempts


def create_schema(engine: Engine) -> None:
    """Create the tables or bring an older store's up to ``SCHEMA_VERSION``.

    Raises:
        ConfigError: the database holds a newer schema.
    """
    for attempt in range(3):  # replicas starting together race to create the tables
        try:
            _create_tables(engine)
            return
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))


def _create_tables(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        found = session.scalar(select(func.max(SchemaVersion.version)))
    if found is not None and found > SCHEMA_VERSION:
        raise ConfigError(
            f"SCALEML_COORDINATOR_DB holds job store schema version {found}, newer than "
            f"this scaleml's {SCHEMA_VERSION}; upgrade scaleml"
        )
    if found is not None and found < SCHEMA_VERSION:
        add_missing_columns(engine)
    if found is None or found < SCHEMA_VERSION:
        with Session(engine) as session, session.begin():
            session.add(SchemaVersion(version=SCHEMA_VERSION))


def mask_url(url: str) -> str:
    """The database URL with its password replaced by ``***`` (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: hide whatever sits before an '@'
        return re.sub(r"://[^/@]*@", "://***@", url)


def normalise_url(url: str) -> str:
    """``url`` as SQLAlchemy reads it, ``postgresql://`` as ``postgresql+psycopg://``."""
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy raises ArgumentError and others
        raise ConfigError(
            f"SCALEML_COORDINATOR_DB: not a database URL: {mask_url(url)!r}"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)
