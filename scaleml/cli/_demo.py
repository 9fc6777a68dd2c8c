"""``scaleml demo``."""

from __future__ import annotations

import click

from scaleml.cli._app import cli


@cli.command()
@click.option(
    "--rows",
    type=click.IntRange(min=1000),
    default=3_000_000,
    show_default=True,
    help="Rows of the demo dataset (generated once under the data directory).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True)
def demo(rows: int, epochs: int) -> None:
    """Generate data, train on a local cluster, register and load the model back."""
    from scaleml.demo import run_demo

    run_demo(rows=rows, epochs=epochs, echo=click.echo)
