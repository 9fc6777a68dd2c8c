"""``scaleml explain``: SHAP explanations of a model on a dataset, computed on the workers,
logged with the model in MLflow, and optionally written as an HTML report."""

from __future__ import annotations

import click

from scaleml.cli._app import cli, model_and_data_options, progress


@cli.command()
@model_and_data_options
@click.option("--target", default=None, help="The target column (marks misclassified rows).")
@click.option(
    "--sample",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Rows whose per-row SHAP values are kept for the plots.",
)
@click.option(
    "--part",
    type=click.Choice(["all", "train", "validation"]),
    default="all",
    show_default=True,
    help="Which blocks of the dataset to explain.",
)
@click.option("--report", "report_path", default=None, help="Write the HTML report here.")
@click.option(
    "--log/--no-log",
    default=True,
    show_default=True,
    help="Log the explanation (importances, plots, background) to the model's MLflow run.",
)
@click.option("--top", default=10, show_default=True, help="Features listed in the output.")
def explain(
    model_uri: str,
    data_path: str,
    target: str | None,
    sample: int,
    part: str,
    report_path: str | None,
    log: bool,
    top: int,
) -> None:
    """Explain a model's predictions on a dataset with SHAP values computed on the workers."""
    from scaleml.cluster import connect
    from scaleml.config import get_settings
    from scaleml.data import Dataset
    from scaleml.insight._explain import explain as run_explain
    from scaleml.insight._explain import load_model_and_background
    from scaleml.insight._explain_report import write_report
    from scaleml.predict import model_features
    from scaleml.tracking._explain import log_explanation, model_run_id

    settings = get_settings()
    if "://" not in model_uri and ":" not in model_uri:
        model_uri = f"models:/{model_uri}"
    model, background = load_model_and_background(model_uri, settings)
    dataset = Dataset(data_path, target=target, features=model_features(model))
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    with connect(settings, announce=announce) as client, progress("explaining") as on_block:
        explanation = run_explain(
            model,
            dataset,
            sample=sample,
            part=part,  # type: ignore[arg-type]
            background=background,
            client=client,
            on_block_done=on_block,
        )
    click.echo(
        f"explained {explanation.n_rows:,} rows with the {explanation.explainer} explainer "
        f"({explanation.output} of {', '.join(explanation.output_names)}) at "
        f"{explanation.rows_per_second:,.0f} rows/s; additivity error "
        f"{explanation.additivity_max_error:.2g}"
    )
    table = explanation.importances().head(top)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if report_path:
        written = write_report(explanation, report_path, f"scaleml explanation of {model_uri}")
        click.echo(f"report: {written}")
    if log:
        from scaleml.tracking import configure
        from scaleml.tracking._runs import RunLogger

        run_id = model_run_id(model_uri, settings=settings)
        log_explanation(RunLogger(configure(settings), run_id), explanation)
        click.echo(f"logged to MLflow run {run_id} (artifacts under explain/)")
