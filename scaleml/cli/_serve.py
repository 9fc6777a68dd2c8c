"""``scaleml serve``: registered models over HTTP, batched on the Dask cluster or locally."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from scaleml.cli._app import cli

if TYPE_CHECKING:
    from scaleml.config import Settings
    from scaleml.gateway import ModelSpec


@cli.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    metavar="NAME[@ALIAS|/VERSION]",
    help="Registered model to serve (repeatable); NAME alone means NAME@champion.",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "local", "dask"]),
    default=None,
    help="dask: predict on the workers; local: in this process "
    "[default: SCALEML_GATEWAY_BACKEND, auto = dask when SCALEML_SCHEDULER is set].",
)
@click.option("--host", default=None, help="Bind address [default: SCALEML_GATEWAY_HOST].")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port; 0 picks a free one."
)
def serve(models: tuple[str, ...], backend: str | None, host: str | None, port: int | None) -> None:
    """Serve registered models: MLflow's /invocations and the v2 inference protocol."""
    from scaleml.config import get_settings
    from scaleml.gateway import ModelSpec, serve_forever

    overrides: dict[str, object] = {}
    if backend is not None:
        overrides["gateway_backend"] = backend
    if host is not None:
        overrides["gateway_host"] = host
    if port is not None:
        overrides["gateway_port"] = port
    settings = get_settings(**overrides)
    try:
        specs = [ModelSpec.parse(text) for text in models]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _check_registered(specs, settings)
    _configure_logging()
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    if settings.gateway_backend == "local" or (
        settings.gateway_backend == "auto" and not settings.scheduler
    ):
        serve_forever(
            specs, settings.model_copy(update={"gateway_backend": "local"}), announce=announce
        )
        return
    from scaleml.cluster import connect

    with connect(settings, announce=announce) as client:
        serve_forever(
            specs,
            settings.model_copy(update={"gateway_backend": "dask"}),
            scheduler_address=client.scheduler.address,
            announce=announce,
        )


def _check_registered(specs: list[ModelSpec], settings: Settings) -> None:
    """Fail fast on a model name the registry does not know (an alias not set yet is waited
    for: the gateway stays unready until it exists)."""
    from scaleml.errors import TrackingError
    from scaleml.tracking import registered_model_exists

    for spec in specs:
        if not registered_model_exists(spec.name, settings=settings):
            raise TrackingError(f"no registered model {spec.name!r} in the MLflow registry")


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("scaleml.gateway", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
