"""The single door to the Dask scheduler: ``SCALEML_SCHEDULER``, or a new LocalCluster.

Worker memory allocator
-----------------------
Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``) so that freed memory goes back to the OS at once.
Setting that variable also turns off glibc's dynamic mmap threshold, which stays at 128 KiB:
every block-sized allocation (a block's feature matrix, Arrow buffers, scikit-learn's per-call
arrays) becomes a fresh ``mmap`` that is page-faulted in and unmapped again, which made
incremental training spend about half again as much CPU per block.

The LocalCluster that :func:`connect` starts gives its workers fixed values instead
(:data:`WORKER_MALLOC_ENVIRON`): allocations up to 32 MiB (the largest mmap threshold glibc
accepts on 64-bit) come from the heap and are reused, and free memory above 64 MiB at the top
of a heap is still returned to the OS. That bounds what an idle, long-running worker keeps
(what glibc's own dynamic rule would reach after one large block, but from the start and
whatever the allocation history), unlike unsetting the variable, and the nanny re-applies the
values when it restarts a worker. They apply only on Linux (glibc), and only when the user has
not chosen: a ``MALLOC_*`` variable in this process's start-up environment is left to Dask,
and a ``distributed.nanny.pre-spawn-environ`` setting other than Dask's default is used
instead of scaleml's values.

The nanny copies its pre-spawn variables into this process's ``os.environ``, where they would
win over the Dask config for any cluster started later in the same process (Dask lets OS
variables override it). So the cluster is started with the chosen values set in both places,
and ``os.environ`` is put back as it was once the workers run. A cluster at ``SCALEML_SCHEDULER``
is started by someone else; its workers keep whatever environment they were given.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dask
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
            _serve_pages(client, settings, say)
            yield client
        return

    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with _worker_malloc_environ():
        cluster = LocalCluster(
            n_workers=settings.local_workers(),
            threads_per_worker=settings.threads_per_worker,
            processes=True,
            memory_limit=settings.worker_memory_limit,
            dashboard_address=loopback_unless_given(settings.dashboard_address),
            local_directory=str(settings.cache_dir),
        )
    with cluster, Client(cluster) as client:
        say(
            f"Dask dashboard: {client.dashboard_link} "
            f"(local cluster, {len(cluster.workers)} worker processes)"
        )
        _serve_pages(client, settings, say)
        yield client


def _serve_pages(client: Client, settings: Settings, say: Callable[[str], object]) -> None:
    """scaleml's pages on the scheduler's dashboard (installed unless already there or turned
    off), announced under the dashboard's line, or one line saying why they are not."""
    if not settings.dashboard_pages:
        return
    from scaleml.dashboard import install, pages_url

    problem = install(client, settings.dashboard_max_records)
    url = pages_url(client)
    if problem is not None:
        say(problem)
    elif url:
        say(f"scaleml pages: {url}")


def loopback_unless_given(address: str | None) -> str | None:
    """A dashboard address with a host, 127.0.0.1 when it names only a port (``:8787``): Dask
    would bind such an address on every interface, and anyone reaching the dashboard can see
    and cancel the cluster's work. Expose it with an explicit host (``0.0.0.0:8787``)."""
    if address is None:
        return None
    host, _, port = str(address).rpartition(":")
    return address if host else f"127.0.0.1:{port}"


def _print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


WORKER_MALLOC_ENVIRON: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(64 * 2**20),
}
"""glibc malloc settings for the workers of the LocalCluster that :func:`connect` starts."""

_PRE_SPAWN = "distributed.nanny.pre-spawn-environ"
_DASK_DEFAULT_MALLOC = {"MALLOC_TRIM_THRESHOLD_": "65536"}


@contextmanager
def _worker_malloc_environ() -> Iterator[None]:
    """Start the workers created inside this block with the malloc settings of
    :func:`_worker_malloc_values`, whatever an earlier cluster left in ``os.environ``."""
    values = _worker_malloc_values()
    if values is None:
        yield
        return
    saved = {name: os.environ.get(name) for name in values}
    _set_environ(values)
    try:
        with dask.config.set({f"{_PRE_SPAWN}.{name}": value for name, value in values.items()}):
            yield
    finally:
        _set_environ(saved)


def _worker_malloc_values() -> dict[str, str | None] | None:
    """The ``MALLOC_*`` variables the workers start with (``None``: unset), or ``None`` to
    leave them to Dask: not glibc, or set in this process's start-up environment (Dask lets
    such a variable win, and it is the user's). A ``distributed.nanny.pre-spawn-environ``
    setting other than Dask's default is the user's choice and kept; otherwise scaleml's
    :data:`WORKER_MALLOC_ENVIRON`."""
    if not sys.platform.startswith("linux"):
        return None
    started_with = _startup_environ()
    if started_with is None or any(name.startswith(b"MALLOC_") for name in started_with):
        return None
    configured = {
        name: None if value is None else str(value)
        for name, value in (dask.config.get(_PRE_SPAWN, default={}) or {}).items()
        if name.startswith("MALLOC_")
    }
    if configured == _DASK_DEFAULT_MALLOC:
        return dict(WORKER_MALLOC_ENVIRON)
    return {name: configured.get(name) for name in {*configured, *WORKER_MALLOC_ENVIRON}}


def _set_environ(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _startup_environ() -> set[bytes] | None:
    """The names in the environment this process was started with (later changes to
    ``os.environ``, such as the nanny's, are not in ``/proc/self/environ``)."""
    try:
        with open("/proc/self/environ", "rb") as environ:
            entries = environ.read().split(b"\0")
    except OSError:
        return None
    return {entry.split(b"=", 1)[0] for entry in entries if entry}
