"""The ``scaleml`` command line.

Bad input ends with one line on standard error, ``error: ...``, and exit code 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from scaleml.errors import ScalemlError

EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scaleml")
def cli() -> None:
    """scaleml: train, search and serve models on a Dask cluster, tracked in MLflow.

    Settings come from SCALEML_* environment variables (see the README); with
    SCALEML_SCHEDULER unset, a local cluster of worker processes is started.
    """


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


@cli.command()
@click.option(
    "--data", "data_path", required=True, help="Parquet/CSV file, directory, glob or URL."
)
@click.option("--target", required=True, help="The column to predict.")
@click.option("--estimator", required=True, help="Allow-listed class, e.g. SGDClassifier.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Estimator parameter (repeatable); values parse as JSON when they can.",
)
@click.option("--features", default=None, help="Comma-separated feature columns (default: all).")
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
    with connect(settings, announce=announce) as client, _progress("training") as on_block:
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
            on_block_done=on_block,
        )
    _print_training(tracked, tracker, register_as, alias)


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

    with _progress("writing") as on_block:
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
def data_describe(path: str, target: str | None) -> None:
    """Print a dataset's files, schema, blocks and rows as JSON."""
    from scaleml.data import Dataset

    click.echo(json.dumps(Dataset(path, target=target).describe(), indent=2))


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
    if register_as:
        click.echo(
            f"registered models:/{register_as}@{alias} (version {tracked.registered_version})"
        )


class _progress:
    """A tqdm progress bar on standard error, fed by ``(done, total)`` callbacks."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        from tqdm.auto import tqdm

        def update(done: int, total: int) -> None:
            if self.bar is None:
                self.bar = tqdm(total=total, desc=self.label, unit="block", file=sys.stderr)
            self.bar.total = max(total, done)
            self.bar.n = done
            self.bar.refresh()

        return update

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scaleml`` console script; returns the exit code."""
    try:
        result = cli.main(args=argv, prog_name="scaleml", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as exc:
        return _fail(exc.format_message())
    except (ScalemlError, click.ClickException) as exc:
        return _fail(str(exc))
    return result if isinstance(result, int) else 0


def _fail(message: str) -> int:
    first_line = " ".join(message.split())
    click.echo(f"error: {first_line}", err=True)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
