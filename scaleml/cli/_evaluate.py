"""``scaleml evaluate``: a model's metrics, curves and fairness on a dataset, on the workers."""

from __future__ import annotations

from typing import Any

import click

from scaleml.cli._app import cli, model_and_data_options, progress


@cli.command()
@model_and_data_options
@click.option("--target", required=True, help="The column holding the true values.")
@click.option(
    "--features", default=None, help="Comma-separated feature columns (default: the model's)."
)
@click.option(
    "--sensitive",
    multiple=True,
    metavar="COL",
    help="Column to break metrics down by (repeatable: groups are the combinations).",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME",
    help="Report only these metrics (repeatable; default: all of the model's kind).",
)
@click.option(
    "--split",
    type=click.Choice(["validation", "all", "train"]),
    default="all",
    show_default=True,
    help="Which blocks of the data to evaluate on.",
)
@click.option("--report", "report_path", default=None, help="Write the HTML report here.")
@click.option(
    "--log/--no-log",
    default=True,
    show_default=True,
    help="Log the evaluation to the model's MLflow run.",
)
def evaluate(
    model_uri: str,
    data_path: str,
    target: str,
    features: str | None,
    sensitive: tuple[str, ...],
    metrics: tuple[str, ...],
    split: str,
    report_path: str | None,
    log: bool,
) -> None:
    """Evaluate a model on a dataset, block by block on the workers."""
    from scaleml.cluster import connect
    from scaleml.config import get_settings
    from scaleml.data import Dataset
    from scaleml.insight._logged import evaluate_logged
    from scaleml.tracking import load_evaluable

    settings = get_settings()
    loaded = load_evaluable(model_uri, settings=settings)
    names = features.split(",") if features else loaded.input_names
    dataset = Dataset(data_path, target=target, features=names)
    _check_before_work(loaded, dataset, list(metrics), list(sensitive), split)
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    with connect(settings, announce=announce) as client, progress("evaluating") as on_block:
        result = evaluate_logged(
            loaded,
            dataset,
            split=split,
            metrics=list(metrics) or None,
            sensitive_features=list(sensitive),
            client=client,
            on_block_done=on_block,
            log=log,
            settings=settings,
            report_path=report_path,
        )
    print_result(result)
    if report_path:
        click.echo(f"report {report_path}")
    if log and loaded.run_id:
        click.echo(f"logged to MLflow run {loaded.run_id} (insight/report.html)")


def _check_before_work(
    loaded: Any, dataset: Any, metrics: list[str], sensitive: list[str], split: str
) -> None:
    """Unknown metrics, missing sensitive columns and signature mismatches, before the cluster
    starts."""
    from scaleml.insight._evaluate import check_request
    from scaleml.insight._pass import check_features, plan_for

    check_features(loaded.model, list(dataset.features), loaded.input_names)
    plan = plan_for(loaded.model, list(dataset.features))
    check_request(plan, dataset, metrics or None, sensitive, split)


def print_result(result: Any) -> None:
    """The metrics table (and fairness differences) on standard output."""
    click.echo(f"{result.name}: {result.kind}, {result.rows:,} rows in {result.seconds:.1f} s")
    width = max((len(name) for name in result.metrics), default=10)
    for name, value in result.metrics.items():
        if name.endswith("_error_bound"):
            continue
        click.echo(f"  {name:<{width}}  {value:.6g}")
    if result.fairness:
        fair = result.fairness
        click.echo(f"fairness by {', '.join(fair['sensitive_features'])}:")
        for group, values in fair["by_group"].items():
            shown = ", ".join(
                f"{k} {values[k]:.4g}"
                for k in ("count", "accuracy", "selection_rate", "mae", "r2")
                if k in values
            )
            click.echo(f"  {group}: {shown}")
        for key in ("demographic_parity_difference", "equalized_odds_difference"):
            if key in fair:
                click.echo(f"  {key}: {fair[key]:.4g}")


def evaluate_final_model(
    model_uri: str | None, run_id: str, dataset: Any, settings: Any, client: Any
) -> None:
    """Evaluate the model a ``train`` / ``search`` / ``boost`` command just logged, on the
    dataset's validation blocks, into its run (off with ``SCALEML_AUTO_EVALUATE=false``).
    A failure is reported on standard error and does not fail the command."""
    if not settings.auto_evaluate or not model_uri:
        return
    from scaleml.insight import evaluate_logged

    try:
        with progress("evaluating") as on_block:
            result = evaluate_logged(
                model_uri,
                dataset,
                client=client,
                on_block_done=on_block,
                log=True,
                settings=settings,
                run_id=run_id,
            )
    except Exception as exc:  # the model is logged (and maybe registered): keep the success
        click.echo(f"warning: the automatic evaluation failed: {exc}", err=True)
        return
    shown = ", ".join(
        f"{k} {v:.4g}"
        for k, v in result.metrics.items()
        if k in ("accuracy", "f1", "f1_macro", "roc_auc", "r2", "rmse", "mae")
    )
    click.echo(f"evaluated on {result.rows:,} validation rows: {shown} (insight/report.html)")
