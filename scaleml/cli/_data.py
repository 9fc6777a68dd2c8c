"""``scaleml data synth | describe``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from scaleml.cli._app import cli, progress


@cli.group()
def data() -> None:
    """Create and inspect datasets."""


@data.command("synth")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--rows", type=click.IntRange(min=1), required=True)
@click.option("--features", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--informative",
    type=click.IntRange(min=1),
    default=None,
    help="Features that drive the target (default: half).",
)
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    default="classification",
    show_default=True,
)
@click.option("--classes", "n_classes", type=click.IntRange(min=2), default=2, show_default=True)
@click.option("--block-rows", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option(
    "--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True
)
@click.option("--random-state", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace PATH if it exists.")
def data_synth(
    path: Path,
    rows: int,
    features: int,
    informative: int | None,
    task: str,
    n_classes: int,
    block_rows: int,
    dtype: str,
    random_state: int,
    overwrite: bool,
) -> None:
    """Write a synthetic dataset of ROWS rows to PATH as Parquet, block by block."""
    from scaleml.data import write_synthetic

    with progress("writing") as on_block:
        written = write_synthetic(
            path,
            rows=rows,
            features=features,
            informative=informative,
            task=task,  # type: ignore[arg-type]
            n_classes=n_classes,
            block_rows=block_rows,
            dtype=dtype,
            random_state=random_state,
            overwrite=overwrite,
            on_block=on_block,
        )
    click.echo(f"wrote {rows:,} rows x {features} features (target column 'target') to {written}")


@data.command("describe")
@click.argument("path")
@click.option("--target", default=None, help="The target column.")
@click.option(
    "--stats",
    is_flag=True,
    help="Add per-column statistics (count, nulls, min, max, mean; distinct count of integer "
    "columns), computed block by block on the cluster.",
)
def data_describe(path: str, target: str | None, stats: bool) -> None:
    """Print a dataset's files, schema, blocks and rows (and statistics) as JSON."""
    from scaleml.data import Dataset

    dataset = Dataset(path, target=target)
    description = dataset.describe()
    if stats:
        from scaleml.cluster import connect
        from scaleml.config import get_settings

        announce = lambda line: click.echo(line, err=True)  # noqa: E731
        with connect(get_settings(), announce=announce) as client, progress("reading") as done:
            statistics = dataset.statistics(client, on_block_done=done)
        description["statistics"] = {name: s.to_dict() for name, s in statistics.items()}
    click.echo(json.dumps(description, indent=2))
