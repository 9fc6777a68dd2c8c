"""The single door to the Dask scheduler: ``SCALEML_SCHEDULER``, or a new LocalCluster."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from scaleml.config import Settings, get_settings


@contextmanager
def connect(
    settings: Settings | None = None,
    *,
    announce: Callable[[str], object] | None = None,
) -> Iterator[Client]:
    """Yield a connected :class:`distributed.Client` and close what was opened on exit.

    With ``settings.scheduler`` set, the client connects to that scheduler. Otherwise a
    :class:`distributed.LocalCluster` is started with worker *processes* (one per core unless
    ``n_workers`` says otherwise), each with ``worker_memory_limit``, and shut down on exit.

    Args:
        settings: scaleml settings; read from the environment when omitted.
        announce: called with one line naming the Dask dashboard URL; defaults to printing on
            standard error. Pass ``lambda line: None`` to stay quiet.
    """
    settings = settings or get_settings()
    say = announce or _print_to_stderr
    if settings.scheduler:
        with Client(settings.scheduler) as client:
            say(f"Dask dashboard: {client.dashboard_link} (scheduler {settings.scheduler})")
            yield client
        return

    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with (
        LocalCluster(
            n_workers=settings.local_workers(),
            threads_per_worker=settings.threads_per_worker,
            processes=True,
            memory_limit=settings.worker_memory_limit,
            dashboard_address=settings.dashboard_address,
            local_directory=str(settings.cache_dir),
        ) as cluster,
        Client(cluster) as client,
    ):
        say(
            f"Dask dashboard: {client.dashboard_link} "
            f"(local cluster, {len(cluster.workers)} worker processes)"
        )
        yield client


def _print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
