"""The scheduler side: a plugin that keeps the last records of each scaleml topic.

:class:`DashboardPlugin` is a ``SchedulerPlugin``: the scheduler calls its ``log_event`` for
every event published (``Client.log_event``), and it keeps the ``scaleml-*`` ones in a
:class:`Store`, at most ``max_records`` per topic (a ``deque``: the oldest are dropped, the
scheduler's memory stays bounded whatever the work publishes). The Dask event log keeps its
own bounded copy too (``distributed.admin.low-level-log-length`` per topic). On start the
plugin adds the ``/scaleml/`` pages to the scheduler's HTTP server (``_routes``) and reads
what the event log already holds, so records published before it was installed are shown.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from scaleml.dashboard._events import KINDS, TOPIC_PREFIX, topic

PLUGIN_NAME = "scaleml-dashboard"
DEFAULT_MAX_RECORDS = 10_000


class Store:
    """The last ``max_records`` records of each kind, with a running sequence number; views
    built from them are cached until a new record of their kind arrives."""

    def __init__(self, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            raise ValueError(f"max_records must be an int >= 1, got {max_records!r}")
        self.max_records = max_records
        self._records: dict[str, deque[dict[str, Any]]] = {
            kind: deque(maxlen=max_records) for kind in KINDS
        }
        self._counts = dict.fromkeys(KINDS, 0)
        self._cache: dict[tuple[str, str], tuple[int, Any]] = {}

    def add(self, kind: str, record: Any) -> None:
        """Keep ``record`` (a dict) under ``kind``; anything else is ignored."""
        if kind in self._records and isinstance(record, dict):
            self._records[kind].append(record)
            self._counts[kind] += 1

    def records(self, kind: str, since: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """``(count, records)``: how many records of ``kind`` ever arrived, and those kept
        after the first ``since`` of them."""
        records, count = self._records[kind], self._counts[kind]
        skip = max(0, len(records) - (count - since))
        return count, list(itertools.islice(records, skip, None))

    def __len__(self) -> int:
        return sum(len(r) for r in self._records.values())

    def states(self, kind: str) -> dict[str, dict[str, Any]]:
        """The activities of ``kind`` (``_views.activities``), built once per new record."""
        from scaleml.dashboard._views import activities

        return self.view(kind, "states", activities)

    def view(self, kind: str, name: str, build: Callable[[list[dict[str, Any]]], Any]) -> Any:
        """``build(records of kind)``, cached until a record of ``kind`` arrives."""
        count = self._counts[kind]
        cached = self._cache.get((kind, name))
        if cached is not None and cached[0] == count:
            return cached[1]
        value = build(list(self._records[kind]))
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[(kind, name)] = (count, value)
        return value


class DashboardPlugin(SchedulerPlugin):
    """Keeps scaleml's records on the scheduler and serves the ``/scaleml/`` pages.

    Args:
        max_records: records kept per topic (``scaleml-search``, ``-training``, ``-job``,
            ``-serving``); older ones are dropped.
    """

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self.max_records = max_records
        self.store = Store(max_records)

    async def start(self, scheduler: Any) -> None:
        from scaleml.dashboard._routes import add_routes

        for kind in KINDS:
            for _, record in scheduler.get_events(topic(kind)):
                self.store.add(kind, record)
        add_routes(scheduler)

    def log_event(self, topic: str, msg: Any) -> None:
        if topic.startswith(TOPIC_PREFIX):
            self.store.add(topic[len(TOPIC_PREFIX) :], msg)


def plugin_of(scheduler: Any) -> DashboardPlugin | None:
    """The scheduler's :class:`DashboardPlugin`, if installed."""
    plugin = scheduler.plugins.get(PLUGIN_NAME)
    return plugin if isinstance(plugin, DashboardPlugin) else None
