"""``scaleml coordinator`` (the job service) and ``scaleml jobs ...`` (its command-line client).

The ``jobs`` commands talk to ``SCALEML_COORDINATOR_URL`` with ``SCALEML_COORDINATOR_TOKEN``.
``jobs wait`` exits 0 when the job SUCCEEDED and 1 when it FAILED or was CANCELLED.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from scaleml.cli._app import cli

_STATES = click.Choice(["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"])


@cli.command()
@click.option("--host", default=None, help="Bind address (default SCALEML_COORDINATOR_HOST).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Default SCALEML_COORDINATOR_PORT."
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--allow-insecure",
    is_flag=True,
    default=None,
    help="Listen on a non-loopback address without a token (SCALEML_COORDINATOR_ALLOW_INSECURE).",
)
def coordinator(
    host: str | None, port: int | None, log_level: str, allow_insecure: bool | None
) -> None:
    """Run the coordinator: the job service (REST API, OpenAPI at /docs) that runs jobs on the
    Dask cluster and keeps them in SCALEML_COORDINATOR_DB."""
    import logging

    import uvicorn

    from scaleml.config import get_settings
    from scaleml.coordinator import create_app
    from scaleml.coordinator._access import check_binding

    settings = get_settings()
    if allow_insecure:
        settings = settings.model_copy(update={"coordinator_allow_insecure": True})
    bind = host or settings.coordinator_host
    check_binding(bind, settings)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    app = create_app(settings)
    uvicorn.run(
        app,
        host=bind,
        port=settings.coordinator_port if port is None else port,
        log_level=log_level,
    )


@cli.group()
def jobs() -> None:
    """Submit, list, show, wait for and cancel coordinator jobs (SCALEML_COORDINATOR_URL)."""


@jobs.command("submit")
@click.argument("spec_file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--wait", "wait_for", is_flag=True, help="Wait for the job, with a progress bar.")
def submit(spec_file: str, wait_for: bool) -> int:
    """Submit the job spec in SPEC_FILE (JSON; '-' reads standard input); print its id."""
    text = click.get_text_stream("stdin").read() if spec_file == "-" else _read(spec_file)
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{spec_file} is not JSON: {exc}") from None
    with _client() as client:
        job = client.submit(spec)
        click.echo(job.id)
        return _wait(job) if wait_for else 0


@jobs.command("list")
@click.option("--state", "states", type=_STATES, multiple=True, help="Filter (repeatable).")
@click.option("--experiment", default=None, help="Only jobs of this MLflow experiment.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
def list_jobs(states: tuple[str, ...], experiment: str | None, limit: int, offset: int) -> None:
    """List jobs, newest first."""
    with _client() as client:
        infos = client.jobs(state=list(states), experiment=experiment, limit=limit, offset=offset)
    click.echo(f"{'ID':32}  {'KIND':6}  {'STATE':9}  {'PROGRESS':>8}  {'BEST':>10}  CREATED")
    for info in infos:
        progress = "" if info.progress is None else f"{info.progress:.0%}"
        best = "" if info.best_score is None else f"{info.best_score:.4g}"
        created = str(info.raw.get("created_at", ""))[:19]
        click.echo(
            f"{info.id:32}  {info.kind:6}  {info.state:9}  {progress:>8}  {best:>10}  {created}"
        )


@jobs.command("show")
@click.argument("job_id")
def show(job_id: str) -> None:
    """Print a job as JSON (state, progress, MLflow ids, model URI, result, error)."""
    with _client() as client:
        info = client.job(job_id).status()
    click.echo(json.dumps(info.raw, indent=2))


@jobs.command("wait")
@click.argument("job_id")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Seconds.")
def wait(job_id: str, timeout: float | None) -> int:
    """Wait for a job with a progress bar; exit 0 if it SUCCEEDED, 1 otherwise."""
    with _client() as client:
        return _wait(client.job(job_id), timeout)


@jobs.command("cancel")
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job (QUEUED: at once; RUNNING: its Dask work stops, MLflow run KILLED)."""
    with _client() as client:
        info = client.job(job_id).cancel()
    note = " (cancel requested)" if info.state == "RUNNING" else ""
    click.echo(f"{info.id} {info.state}{note}")


def _client() -> Any:
    from scaleml.client import Client

    return Client(retries=3)  # about 4 s of retries before giving up: a person is waiting


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None


def _wait(job: Any, timeout: float | None = None) -> int:
    try:
        info = job.wait(timeout)
    except TimeoutError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    click.echo(f"{info.id} {info.state}")
    if info.state == "SUCCEEDED":
        result = info.raw.get("result") or {}
        for key in ("run_id", "model_uri", "registered_version", "best_score", "best_params"):
            if result.get(key) is not None:
                click.echo(f"{key}: {json.dumps(result[key])}")
        return 0
    if info.error:
        click.echo(f"error: {info.error}", err=True)
    return 1
