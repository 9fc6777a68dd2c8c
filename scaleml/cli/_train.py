"""``scaleml train``: incremental training on out-of-core data, logged to MLflow."""

from __future__ import annotations

from typing import Any

import click

from scaleml.cli._app import cli, progress, training_options
from scaleml.cli._promote import print_promotion, promote_option


@cli.command()
@training_options("Estimator parameter (repeatable); values parse as JSON when they can.")
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many epochs without improvement.",
)
@click.option("--scoring", default=None, help="Validation metric for early stopping.")
@click.option(
    "--random-state", type=int, default=0, show_default=True, help="Seeds the block order."
)
@click.option(
    "--validation-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of blocks held out for validation.",
)
@click.option("--register", "register_as", default=None, help="Register the model as NAME.")
@click.option("--alias", default="champion", show_default=True, help="Alias moved on register.")
@promote_option
def train(
    data_path: str,
    target: str,
    estimator: str,
    params: tuple[str, ...],
    features: str | None,
    epochs: int,
    patience: int | None,
    scoring: str | None,
    random_state: int,
    validation_fraction: float,
    register_as: str | None,
    alias: str,
    promote: str,
) -> None:
    """Train an incremental estimator on out-of-core data and log it to MLflow."""
    from scaleml.cluster import connect
    from scaleml.config import get_settings
    from scaleml.data import Dataset
    from scaleml.estimators import from_spec, parse_param
    from scaleml.tracking import Tracker, train_and_log

    settings = get_settings()
    model = from_spec({"estimator": estimator, "params": dict(parse_param(p) for p in params)})
    dataset = Dataset(
        data_path,
        target=target,
        features=features.split(",") if features else None,
        validation_fraction=validation_fraction,
    )
    tracker = Tracker(settings)
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    with connect(settings, announce=announce) as client, progress("training") as on_block:
        tracked = train_and_log(
            model,
            dataset,
            tracker=tracker,
            client=client,
            epochs=epochs,
            patience=patience,
            scoring=scoring,
            random_state=random_state,
            prefetch=settings.prefetch_blocks,
            register_as=register_as,
            alias=alias,
            promote=promote,
            on_block_done=on_block,
        )
        from scaleml.cli._evaluate import evaluate_final_model

        evaluate_final_model(tracked.model_uri, tracked.run_id, dataset, settings, client)
    _print_training(tracked, tracker, register_as, alias)


def _print_training(tracked: Any, tracker: Any, register_as: str | None, alias: str) -> None:
    result = tracked.result
    for report in result.history:
        scores = ", ".join(f"{k}={v:.4f}" for k, v in report.scores.items())
        click.echo(f"epoch {report.epoch}: {report.rows:,} rows in {report.seconds:.1f}s {scores}")
    if result.stopped_early:
        click.echo(f"stopped early after epoch {len(result.history)} (best: {result.best_epoch})")
    click.echo(f"trained {result.rows_trained:,} rows at {result.rows_per_second:,.0f} rows/s")
    click.echo(f"MLflow run {tracked.run_id} in experiment {tracker.experiment_name!r}")
    click.echo(f"model {tracked.model_uri}")
    print_promotion(tracked.promotion)
