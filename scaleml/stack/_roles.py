"""The command line of every role of a scaleml deployment, built in one place.

``scaleml cluster up`` runs these commands as local processes and the Helm chart's containers
run the same ones (the chart tests compare them), so one machine is a faithful twin of a
release. A command is an argv list whose first item is a program name (``dask``, ``mlflow``,
``scaleml``) plus the environment variables the role needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from scaleml.cluster import WORKER_MALLOC_ENVIRON

ROLES = ("scheduler", "worker", "mlflow", "coordinator", "gateway")
"""Every role, in start order."""

SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
MLFLOW_PORT = 5000
COORDINATOR_PORT = 8800
GATEWAY_PORT = 8000


@dataclass(frozen=True)
class RoleCommand:
    """One role's process: ``argv`` (program name first) and extra environment."""

    role: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def scheduler_command(
    *, host: str, port: int = SCHEDULER_PORT, dashboard_port: int = DASHBOARD_PORT
) -> RoleCommand:
    """The Dask scheduler: comm on ``host:port``, dashboard (and ``/health``, ``/metrics``,
    scaleml's pages under ``/scaleml/`` from the ``scaleml.dashboard`` preload) on
    ``host:dashboard_port``."""
    return RoleCommand(
        "scheduler",
        [
            "dask",
            "scheduler",
            "--host",
            host,
            "--port",
            str(port),
            "--dashboard-address",
            f"{host}:{dashboard_port}",
            "--preload",
            "scaleml.dashboard",
        ],
    )


def worker_command(
    *,
    scheduler_address: str,
    host: str,
    nthreads: int,
    memory_limit: str,
    name: str,
    local_directory: str,
    dashboard_port: int = 0,
) -> RoleCommand:
    """One Dask worker (with its nanny, which restarts it) bound to ``host``.

    Workers start with scaleml's glibc malloc thresholds (``WORKER_MALLOC_ENVIRON``, see
    ``scaleml.cluster``) instead of Dask's ``MALLOC_TRIM_THRESHOLD_=65536``: variables of the
    worker's own environment win over the nanny's pre-spawn settings.
    """
    return RoleCommand(
        "worker",
        [
            "dask",
            "worker",
            scheduler_address,
            "--host",
            host,
            "--nthreads",
            str(nthreads),
            "--memory-limit",
            memory_limit,
            "--name",
            name,
            "--local-directory",
            local_directory,
            "--dashboard-address",
            f"{host}:{dashboard_port}",
        ],
        dict(WORKER_MALLOC_ENVIRON),
    )


def mlflow_command(
    *,
    host: str,
    port: int = MLFLOW_PORT,
    backend_store_uri: str,
    artifacts_destination: str,
    workers: int = 1,
    allowed_hosts: str | None = None,
) -> RoleCommand:
    """The MLflow tracking server: runs and registry in ``backend_store_uri`` (SQLite or
    PostgreSQL), artifacts stored in ``artifacts_destination`` and served by the server
    (clients use ``mlflow-artifacts:/`` URIs and need no store credentials)."""
    argv = [
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts_destination,
        "--workers",
        str(workers),
    ]
    if allowed_hosts:
        argv += ["--allowed-hosts", allowed_hosts]
    # MLflow's own job runner (GenAI jobs, a pool of huey consumers) is not used by scaleml
    return RoleCommand("mlflow", argv, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})


def coordinator_command(*, host: str, port: int = COORDINATOR_PORT) -> RoleCommand:
    """The coordinator (``scaleml coordinator``); its job store, scheduler and MLflow come
    from ``SCALEML_*`` settings in the environment."""
    return RoleCommand(
        "coordinator", ["scaleml", "coordinator", "--host", host, "--port", str(port)]
    )


def gateway_command(
    *, host: str, port: int = GATEWAY_PORT, models: Sequence[str], backend: str = "dask"
) -> RoleCommand:
    """The gateway (``scaleml serve``) serving ``models`` (``NAME[@alias|/version]``),
    predicting on the cluster's workers."""
    argv = ["scaleml", "serve"]
    for model in models:
        argv += ["--model", model]
    argv += ["--backend", backend, "--host", host, "--port", str(port)]
    return RoleCommand("gateway", argv)
