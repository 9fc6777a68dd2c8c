"""``scaleml demo``."""

from __future__ import annotations

import click

from scaleml.cli._app import cli


@cli.command()
@click.option(
    "--rows",
    type=click.IntRange(min=10_000),
    default=3_000_000,
    show_default=True,
    help="Rows of the demo dataset (generated once under the data directory).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--max-iter",
    type=click.IntRange(min=3),
    default=27,
    show_default=True,
    help="Hyperband's max_iter: partial_fit calls of the longest-trained model.",
)
@click.option("--serve", is_flag=True, help="Keep serving the champion until Ctrl-C.")
def demo(rows: int, epochs: int, max_iter: int, serve: bool) -> None:
    """Generate data, train and search on a local cluster, register the champion, load it back
    and serve it over HTTP."""
    from scaleml.demo import run_demo

    run_demo(rows=rows, epochs=epochs, max_iter=max_iter, serve=serve, echo=click.echo)
