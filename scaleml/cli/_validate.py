"""``scaleml validate``: check a dataset against a model's contract, on the cluster."""

from __future__ import annotations

import json

import click

from scaleml.cli._app import cli, progress


@cli.command()
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="MLflow model URI (models:/NAME@ALIAS, models:/NAME/VERSION) or NAME@ALIAS.",
)
@click.option("--data", "data_path", required=True, help="Parquet/CSV file, directory or URL.")
@click.option("--report", default=None, help="Write the drift report as a Bokeh HTML page.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate(model_uri: str, data_path: str, report: str | None, as_json: bool) -> None:
    """Check every row of a dataset against the model's contract and print a drift report
    (PSI and Wasserstein for numeric features, Jensen-Shannon for categorical ones)."""
    from scaleml.cluster import connect
    from scaleml.config import get_settings
    from scaleml.monitor import validate as run_validation

    settings = get_settings()
    if "://" not in model_uri and ":" not in model_uri:
        model_uri = f"models:/{model_uri}"
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    with connect(settings, announce=announce) as client, progress("checking") as on_block:
        found = run_validation(
            model_uri,
            data_path,
            client=client,
            report=report,
            settings=settings,
            on_block_done=on_block,
        )
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2, default=str))
    else:
        for line in found.lines():
            click.echo(line)
    if report:
        click.echo(f"wrote the report to {report}")
