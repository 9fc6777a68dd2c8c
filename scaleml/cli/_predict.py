"""``scaleml predict``: batch scoring of a dataset with a registered model, on the workers."""

from __future__ import annotations

from pathlib import Path

import click

from scaleml.cli._app import cli, model_and_data_options, progress


@cli.command()
@model_and_data_options
@click.option("--output", required=True, help="Directory to write (Parquet, one file per block).")
@click.option(
    "--keep",
    multiple=True,
    metavar="COL",
    help="Input column copied next to the predictions, e.g. a key (repeatable).",
)
@click.option(
    "--features", default=None, help="Comma-separated feature columns (default: the model's)."
)
@click.option(
    "--probabilities/--no-probabilities",
    default=None,
    help="Class probability columns (default: for classifiers).",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def predict(
    model_uri: str,
    data_path: str,
    output: str,
    keep: tuple[str, ...],
    features: str | None,
    probabilities: bool | None,
    overwrite: bool,
) -> None:
    """Score every row of a dataset with a model, block by block on the workers."""
    from scaleml.cluster import connect
    from scaleml.config import get_settings
    from scaleml.data import Dataset
    from scaleml.predict import check_request, model_features, predict_dataset
    from scaleml.tracking import load_model

    settings = get_settings()
    if "://" not in model_uri and ":" not in model_uri:
        model_uri = f"models:/{model_uri}"
    model = load_model(model_uri, settings=settings).get_raw_model()
    names = features.split(",") if features else model_features(model)
    dataset = Dataset(data_path, target=None, features=names, validation_fraction=0.0)
    check_request(model, dataset, Path(output), keep, overwrite=overwrite)  # before any work
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    with connect(settings, announce=announce) as client, progress("scoring") as on_block:
        result = predict_dataset(
            model,
            dataset,
            output,
            keep=list(keep),
            probabilities=probabilities,
            client=client,
            overwrite=overwrite,
            on_block_done=on_block,
        )
    click.echo(
        f"wrote {result.rows:,} predictions ({', '.join(result.columns)}) in "
        f"{len(result.files)} file(s) to {result.output} at {result.rows_per_second:,.0f} rows/s"
    )
