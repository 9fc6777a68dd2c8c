"""``scaleml cluster up | status | down``: the whole service as supervised local processes.

The parts (Dask scheduler, workers, MLflow server, coordinator, gateway) run the same command
lines as the Helm chart's containers (``scaleml.stack``), bound to 127.0.0.1.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

_PORT = click.IntRange(1, 65535)
_STORES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+")


@click.group()
def cluster() -> None:
    """Run the whole service on this machine: Dask scheduler and workers, MLflow server,
    coordinator and gateway, as supervised processes on 127.0.0.1."""


def _state_dir(value: str | None) -> Path:
    from scaleml.config import get_settings

    return Path(value or get_settings().stack_dir).absolute()


_STATE_DIR = click.option(
    "--state-dir",
    default=None,
    help="Where logs, PID records and the stores live [default: SCALEML_STACK_DIR].",
)


@cluster.command("up")
@_STATE_DIR
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Worker processes [2].")
@click.option("--threads-per-worker", type=click.IntRange(1, 256), default=None, help="[1]")
@click.option("--memory-limit", default=None, help="Per worker, e.g. 2GiB [auto].")
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="NAME[@ALIAS|/VERSION]",
    help="Registered model the gateway serves (repeatable); without one, no gateway runs.",
)
@click.option(
    "--mlflow-backend-store",
    default=None,
    help="MLflow's store: a postgresql:// URL [default: SCALEML_MLFLOW_BACKEND_STORE_URI, "
    "else a SQLite file in the state directory].",
)
@click.option("--coordinator-db", default=None, help="Job store URL [SQLite in the state dir].")
@click.option("--data-dir", default=None, help="Datasets the coordinator may read [STATE/data].")
@click.option("--scheduler-port", type=_PORT, default=None, help="[8786]")
@click.option("--dashboard-port", type=_PORT, default=None, help="[8787]")
@click.option("--mlflow-port", type=_PORT, default=None, help="[5000]")
@click.option("--coordinator-port", type=_PORT, default=None, help="[8800]")
@click.option("--gateway-port", type=_PORT, default=None, help="[8000]")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for every part to be healthy.",
)
def up(state_dir: str | None, timeout: float, **options: object) -> None:
    """Start the stack (or what is missing of it), wait until every part is healthy, print
    the addresses and the `export SCALEML_...` lines that point the client and CLI at it.

    On a running stack, options not given keep their earlier values; parts whose command
    changed are restarted, stopped or dead parts started again.
    """
    from scaleml.config import get_settings
    from scaleml.stack import StackConfig
    from scaleml.stack import up as stack_up

    directory = _state_dir(state_dir)
    config = StackConfig.load(directory) or StackConfig(directory)
    settings = get_settings()
    if config.mlflow_backend_store is None:
        config.mlflow_backend_store = settings.mlflow_backend_store_uri
    models = options.pop("models")
    if models:
        config.models = list(models)
    for name, value in options.items():
        if value is not None:
            setattr(config, name, Path(value).absolute() if name == "data_dir" else value)
    _check(config)
    stack_up(config, timeout_s=timeout, announce=lambda line: click.echo(line, err=True))
    click.echo(f"scaleml stack up (state and logs in {directory})", err=True)
    for part, url in config.urls.items():
        click.echo(f"  {part:12} {url}", err=True)
    if not config.models:
        click.echo("  gateway      not started (no --model)", err=True)
    env = config.settings_env()
    for name in (
        "SCALEML_SCHEDULER",
        "SCALEML_MLFLOW_TRACKING_URI",
        "SCALEML_COORDINATOR_URL",
        "SCALEML_DATA_DIR",
    ):
        click.echo(f"export {name}={shlex.quote(env[name])}")


def _check(config: object) -> None:
    from dask.utils import parse_bytes

    memory = config.memory_limit  # type: ignore[attr-defined]
    if memory != "auto":
        try:
            parse_bytes(memory)
        except (ValueError, TypeError):
            raise click.BadParameter(
                f"expected 'auto' or a size such as '2GiB', got {memory!r}",
                param_hint="--memory-limit",
            ) from None
    store = config.mlflow_backend_store  # type: ignore[attr-defined]
    if store and not store.startswith(
        ("sqlite:///", "postgresql://", "postgres://", "postgresql+")
    ):
        raise click.BadParameter(
            f"expected a sqlite:/// or postgresql:// URL, got {store.split('://')[0]}://…",
            param_hint="--mlflow-backend-store",
        )


@cluster.command("status")
@_STATE_DIR
def status(state_dir: str | None) -> int:
    """Say which parts run and are healthy; exit 0 when all are, 1 otherwise."""
    from scaleml.stack import status as stack_status

    parts = stack_status(_state_dir(state_dir))
    click.echo(f"{'PART':12}  {'STATE':9}  {'PID':>7}  {'HEALTH':7}  DETAIL")
    for part in parts:
        health = "ok" if part.healthy else "failing"
        pid = "" if part.pid is None else str(part.pid)
        click.echo(f"{part.name:12}  {part.state:9}  {pid:>7}  {health:7}  {part.detail}")
    return 0 if all(part.healthy for part in parts) else 1


@cluster.command("down")
@_STATE_DIR
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds each part gets after SIGTERM before SIGKILL.",
)
def down(state_dir: str | None, timeout: float) -> None:
    """Stop every part (SIGTERM, SIGKILL after --timeout); nothing is left running."""
    from scaleml.stack import down as stack_down

    directory = _state_dir(state_dir)
    killed = stack_down(directory, timeout_s=timeout)
    if killed:
        click.echo(f"killed left-over parts: {', '.join(killed)}", err=True)
    click.echo(f"scaleml stack in {directory} stopped", err=True)
