"""Where the pages come from: a preload for schedulers started by ``dask scheduler`` (the
local stack's and the chart's), and :func:`install` for a connected client (the LocalCluster
``scaleml.cluster.connect()`` starts, or a scheduler started elsewhere)."""

from __future__ import annotations

import logging
from typing import Any

from scaleml.dashboard._store import PLUGIN_NAME, DashboardPlugin

logger = logging.getLogger("scaleml.dashboard")
PAGES_PATH = "scaleml/"


def dask_setup(scheduler: Any) -> None:
    """Preload hook: ``dask scheduler --preload scaleml.dashboard`` serves the pages."""
    from scaleml.config import get_settings

    scheduler.add_plugin(DashboardPlugin(get_settings().dashboard_max_records), name=PLUGIN_NAME)


def install(client: Any, max_records: int | None = None) -> str | None:
    """Serve the pages on ``client``'s scheduler (kept if already there); returns one line
    saying why not when it cannot (the scheduler cannot load scaleml, or refuses plugins)."""
    if max_records is None:
        from scaleml.config import get_settings

        max_records = get_settings().dashboard_max_records
    try:
        client.register_plugin(DashboardPlugin(max_records), name=PLUGIN_NAME)
    except Exception as exc:  # a scheduler without scaleml, or one that refuses pickles
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            "scaleml pages not installed on the scheduler "
            f"({type(exc).__name__}: {first[:160]}); start it with --preload scaleml.dashboard"
        )
    return None


def pages_url(client: Any) -> str | None:
    """The address of the ``/scaleml/`` index next to ``client``'s dashboard, if it has one."""
    link = getattr(client, "dashboard_link", None)
    if not link:
        return None
    base = link.rsplit("/", 1)[0] if link.endswith("/status") else link.rstrip("/")
    return f"{base}/{PAGES_PATH}"
