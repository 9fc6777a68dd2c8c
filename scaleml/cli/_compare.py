"""``scaleml compare``: several models on the same rows in one pass, as a leaderboard."""

from __future__ import annotations

import click

from scaleml.cli._app import cli, progress


@cli.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="URI",
    help="A model URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/model); repeatable.",
)
@click.option("--registered", default=None, help="Compare every version of this registered model.")
@click.option("--experiment", default=None, help="Compare the models of this experiment's runs.")
@click.option("--search-run", default=None, help="Compare the trials of this search run.")
@click.option(
    "--train",
    "train_specs",
    multiple=True,
    metavar="SPEC",
    help="Train this model first and compare it too: an estimator spec as JSON "
    '(\'{"estimator": {"estimator": "SGDClassifier", "params": {}}, "epochs": 2}\'), a JSON '
    "list of them, or a file holding either; repeatable. All train at once on the cluster.",
)
@click.option("--data", "data_path", required=True, help="Parquet/CSV file, directory or glob.")
@click.option("--target", required=True, help="The column holding the true values.")
@click.option(
    "--features",
    default=None,
    help="Comma-separated feature columns (default: the first model's).",
)
@click.option("--sort-by", default=None, help="Metric to rank by (default: accuracy or r2).")
@click.option(
    "--split",
    type=click.Choice(["validation", "all", "train"]),
    default="all",
    show_default=True,
    help="Which blocks of the data to compare on.",
)
@click.option("--report", "report_path", default=None, help="Write the HTML report here.")
@click.option("--log/--no-log", default=True, show_default=True, help="Log a comparison run.")
def compare(
    models: tuple[str, ...],
    registered: str | None,
    experiment: str | None,
    search_run: str | None,
    train_specs: tuple[str, ...],
    data_path: str,
    target: str,
    features: str | None,
    sort_by: str | None,
    split: str,
    report_path: str | None,
    log: bool,
) -> None:
    """Compare models on the same rows of a dataset (each block read once) as a leaderboard;
    with --train, first train several estimator families at once on the cluster."""
    from scaleml.cluster import connect
    from scaleml.config import get_settings
    from scaleml.data import Dataset
    from scaleml.insight import InsightError, compare_logged
    from scaleml.insight._candidates import check_candidates

    if not (models or registered or experiment or search_run or train_specs):
        raise InsightError(
            "give models to compare: --model, --registered, --experiment, --search-run or --train"
        )
    train = [spec for text in train_specs for spec in _read_specs(text)]
    check_candidates(train)  # before connecting to a cluster
    settings = get_settings()
    names = features.split(",") if features else None
    if names is None and models:  # the first model's signature, as `scaleml evaluate` does
        from scaleml.tracking import load_evaluable

        names = load_evaluable(models[0], settings=settings).input_names
    dataset = Dataset(data_path, target=target, features=names)
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    with connect(settings, announce=announce) as client, progress("comparing") as on_block:
        if train:
            click.echo(f"training {len(train)} model(s) on the cluster, then comparing", err=True)
        comparison = compare_logged(
            list(models),
            dataset,
            registered=registered,
            experiment=experiment,
            parent_run=search_run,
            train=train or None,
            settings=settings,
            log=log,
            report_path=report_path,
            sort_by=sort_by,
            split=split,
            client=client,
            on_block_done=on_block,
        )
    board = comparison.leaderboard
    columns = [c for c in board[0] if c not in ("model_uri",)]
    widths = {c: max(len(c), *(len(_cell(r[c])) for r in board)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for r in board:
        click.echo("  ".join(_cell(r[c]).ljust(widths[c]) for c in columns))
    click.echo(f"{comparison.rows:,} rows, one pass in {comparison.seconds:.1f} s")
    if report_path:
        click.echo(f"report {report_path}")
    if comparison.run_id:
        click.echo(f"MLflow run {comparison.run_id}")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _read_specs(text: str) -> list[object]:
    """``--train``'s value: JSON text (one spec or a list) or a file holding it."""
    import json
    from pathlib import Path

    from scaleml.insight._candidates import CandidateSpecError

    source = text.strip()
    if not source.startswith(("{", "[")):
        path = Path(source)
        if not path.is_file():
            raise CandidateSpecError(f"--train {text[:100]!r} is neither JSON nor a file")
        source = path.read_text()
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise CandidateSpecError(f"--train is not valid JSON: {exc}") from None
    return value if isinstance(value, list) else [value]
