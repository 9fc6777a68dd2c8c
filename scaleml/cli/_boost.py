"""``scaleml boost``: distributed XGBoost / LightGBM training on the cluster, logged to MLflow."""

from __future__ import annotations

from typing import Any

import click

from scaleml.cli._app import cli, training_options
from scaleml.cli._promote import print_promotion, promote_option


@cli.command()
@training_options(
    "Estimator parameter (repeatable; values parse as JSON when they can), including the "
    "keyword parameters the library documents, e.g. verbose=-1."
)
@click.option(
    "--early-stopping-rounds",
    type=click.IntRange(min=1),
    default=None,
    help="Stop when the validation metric has not improved for this many rounds.",
)
@click.option(
    "--eval-metric",
    "eval_metrics",
    multiple=True,
    help="Validation metric in the library's terms, e.g. logloss, auc (repeatable).",
)
@click.option(
    "--validation-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of blocks held out for validation.",
)
@click.option("--run-name", default=None, help="Name of the MLflow run.")
@click.option("--register", "register_as", default=None, help="Register the model as NAME.")
@click.option("--alias", default="champion", show_default=True, help="Alias moved on register.")
@promote_option
def boost(
    data_path: str,
    target: str,
    estimator: str,
    params: tuple[str, ...],
    features: str | None,
    early_stopping_rounds: int | None,
    eval_metrics: tuple[str, ...],
    validation_fraction: float,
    run_name: str | None,
    register_as: str | None,
    alias: str,
    promote: str,
) -> None:
    """Train XGBoost or LightGBM on the whole cluster and log the model to MLflow."""
    from scaleml.cluster import connect
    from scaleml.config import get_settings
    from scaleml.data import Dataset
    from scaleml.estimators import parse_param
    from scaleml.tracking import Tracker, train_boosting_and_log
    from scaleml.train._boosting_params import resolve_estimator

    settings = get_settings()
    spec = {"estimator": estimator, "params": dict(parse_param(p) for p in params)}
    resolve_estimator(spec)  # a bad estimator or parameter fails before the cluster starts
    dataset = Dataset(
        data_path,
        target=target,
        features=features.split(",") if features else None,
        validation_fraction=validation_fraction,
    )
    tracker = Tracker(settings)
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    with connect(settings, announce=announce) as client:
        click.echo(f"boosting {estimator} on {dataset.n_rows:,} rows...", err=True)
        tracked = train_boosting_and_log(
            spec,
            dataset,
            tracker=tracker,
            client=client,
            run_name=run_name,
            register_as=register_as,
            alias=alias,
            promote=promote,
            early_stopping_rounds=early_stopping_rounds,
            eval_metric=list(eval_metrics) or None,
        )
        from scaleml.cli._evaluate import evaluate_final_model

        evaluate_final_model(tracked.model_uri, tracked.run_id, dataset, settings, client)
    _print_boosting(tracked, tracker)


def _print_boosting(tracked: Any, tracker: Any) -> None:
    result = tracked.result
    stopped = " (stopped early)" if result.stopped_early else ""
    click.echo(
        f"{result.n_rounds} rounds{stopped}, best iteration {result.best_iteration}, "
        f"{result.seconds:.1f}s"
    )
    for name, value in {**result.best_scores, **result.scores}.items():
        click.echo(f"  {name} = {value:.4f}")
    click.echo(f"MLflow run {tracked.run_id} in experiment {tracker.experiment_name!r}")
    click.echo(f"model {tracked.model_uri}")
    print_promotion(tracked.promotion)
