"""What the work tells the dashboard: small records on the scheduler's event log.

Trainings, searches, boosting, coordinator jobs and the gateway call :func:`publish` with a
*kind* (``search``, ``training``, ``job``, ``serving``) and a small dict; it goes to the
scheduler as ``Client.log_event("scaleml-<kind>", record)`` (the scheduler's plugin keeps the
last records of each topic, see ``_store``). Publishing never blocks the work and never fails
it: the message is sent from the client's event loop without waiting for an answer, and
without a Dask client (a plain scikit-learn session, the gateway's local backend) nothing is
sent. Records are made small before they leave: numbers, short strings, at most
:data:`MAX_ITEMS` entries per mapping.

:func:`activity` wraps one training, search, boosting or job: it runs the block inside
``distributed.span("scaleml", kind, id)`` (so the dashboard's Fine Performance Metrics and the
task stream attribute the time to it), publishes ``start`` and ``end`` records, and makes the
activity current, so that code deeper down (the tracking stage, which knows the MLflow run
ids) can add to it with :func:`note`. :func:`mlflow_run` is how the tracking stage says which
MLflow run the next activity belongs to.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("scaleml.dashboard")

TOPIC_PREFIX = "scaleml-"
KINDS = ("search", "training", "job", "serving")
MAX_ITEMS = 200
"""Entries kept per mapping or list of a record (the rest is dropped, ``...`` says so)."""
_MAX_TEXT = 160
PUBLISHING = True
"""Whether :func:`publish` sends anything (``benchmarks/search.py --dashboard`` turns it off
for its "pages off" runs)."""


def topic(kind: str) -> str:
    """The scheduler event topic of ``kind`` (``scaleml-search`` ...)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return TOPIC_PREFIX + kind


@dataclass(frozen=True)
class Activity:
    """One training, search, boosting or job: its kind, id and span id."""

    kind: str
    id: str
    span_id: str | None


_current: ContextVar[Activity | None] = ContextVar("scaleml_activity", default=None)
_run: ContextVar[dict[str, str] | None] = ContextVar("scaleml_mlflow_run", default=None)


def current() -> Activity | None:
    """The innermost :func:`activity` of this thread (or task), if any."""
    return _current.get()


def publish(kind: str, record: Mapping[str, Any], client: Any = None) -> None:
    """Send ``record`` (made small) to the scheduler under ``kind``'s topic; never raises.

    Args:
        kind: ``search``, ``training``, ``job`` or ``serving``.
        record: the record; a ``time`` (seconds since the epoch) is added.
        client: the Dask client to send through; default the current one (none: not sent).
    """
    name = topic(kind)
    if not PUBLISHING:
        return
    client = client if client is not None else _default_client()
    if client is None:
        return
    message = small({**record, "time": time.time()})
    try:
        client.loop.add_callback(_send, client, name, message)
    except Exception:  # a closed client or loop: the dashboard misses one record
        logger.debug("cannot publish to %s", name, exc_info=True)


async def _send(client: Any, name: str, message: dict[str, Any]) -> None:
    try:
        await client.scheduler.log_event(topic=name, msg=message)
    except Exception:
        logger.debug("cannot publish to %s", name, exc_info=True)


@contextmanager
def activity(
    kind: str, name: str, *, id: str | None = None, client: Any = None, **start: Any
) -> Iterator[Activity]:
    """Run the block as one scaleml activity: a span ``("scaleml", kind, id)`` and ``start`` /
    ``end`` records (``end`` says ``status``: ``finished``, ``failed`` or ``cancelled``).

    Args:
        kind: ``search``, ``training`` or ``job`` (boosting is a ``training``).
        name: what the pages call it (``HyperbandSearchCV(SGDClassifier)``).
        id: the activity's id (a job's id); default a new short id.
        client: the Dask client (default the current one).
        **start: more fields of the ``start`` record (counts, parameters).
    """
    topic(kind)
    activity_id = id or uuid.uuid4().hex[:12]
    run = _run.get()
    with _span(kind, activity_id) as span_id:
        here = Activity(kind, activity_id, span_id)
        token = _current.set(here)
        record = {"event": "start", "id": activity_id, "name": name, "span": span_id, **start}
        parent = _parent(kind)
        if parent is not None:
            record["parent"] = parent
        if run:
            record.update(run)
        publish(kind, record, client)
        status = "failed"
        try:
            yield here
            status = "finished"
        except KeyboardInterrupt:
            status = "cancelled"
            raise
        finally:
            _current.reset(token)
            publish(kind, {"event": "end", "id": activity_id, "status": status}, client)


def note(client: Any = None, **fields: Any) -> None:
    """Add ``fields`` (an MLflow run id, trial run ids ...) to the current activity."""
    here = _current.get()
    if here is not None:
        publish(here.kind, {"event": "note", "id": here.id, **fields}, client)


@contextmanager
def mlflow_run(
    run_id: str, experiment_id: str | None = None, tracking_uri: str | None = None
) -> Iterator[None]:
    """The activities started inside the block belong to this MLflow run (the pages link
    to it when the tracking store is a server)."""
    run = {"run_id": run_id, "experiment_id": experiment_id or ""}
    if tracking_uri and str(tracking_uri).startswith(("http://", "https://")):
        run["tracking_uri"] = str(tracking_uri)
    token = _run.set(run)
    try:
        yield
    finally:
        _run.reset(token)


@contextmanager
def _span(kind: str, activity_id: str) -> Iterator[str | None]:
    try:
        from distributed import span
    except ImportError:  # pragma: no cover - distributed is a dependency
        yield None
        return
    with span("scaleml", kind, activity_id) as span_id:
        yield span_id


def _parent(kind: str) -> str | None:
    outer = _current.get()
    return f"{outer.kind}:{outer.id}" if outer is not None else None


def task_label(obj: Any) -> str:
    """Readable words for task keys: ``obj``'s class name in lower-case letters and a tag of
    the current activity (its id spelled in letters), e.g. ``sgdclassifier-mjkrqs``.

    Dask names a task group (its colour in the task stream, its row in the progress bars) by
    a key's leading words of letters, and a task group belongs to one span: with the tag, two
    concurrent jobs training the same estimator get task groups of their own
    (``fit_blocks-sgdclassifier-mjkrqs``), each in its job's span."""
    name = "".join(c for c in type(obj).__name__.lower() if c.isalpha())[:40] or "task"
    here = _current.get()
    source = here.id if here is not None else uuid.uuid4().hex
    tag = "".join(_LETTERS.get(c, c) for c in source.lower() if c.isalnum())[:6]
    return f"{name}-{tag}" if tag.isalpha() else name


_LETTERS = dict(zip("0123456789abcdef", "ghijkmnpqrstuvwx", strict=True))
"""Hex digits spelled as letters that are not hex digits (Dask drops hex-looking words)."""


def _default_client() -> Any:
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def small(value: Any, depth: int = 0) -> Any:
    """``value`` as plain msgpack-friendly data: finite floats (else None), short strings, at
    most :data:`MAX_ITEMS` entries per mapping or list, three levels deep."""
    if value is None or isinstance(value, bool | str):
        return value if not isinstance(value, str) else value[:_MAX_TEXT]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if depth < 3 and isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k)[:_MAX_TEXT]: small(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = len(items) - MAX_ITEMS
        return out
    if depth < 3 and isinstance(value, list | tuple):
        return [small(v, depth + 1) for v in value[:MAX_ITEMS]]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        try:
            return small(value.item(), depth)
        except (TypeError, ValueError):
            pass
    return repr(value)[:_MAX_TEXT]
