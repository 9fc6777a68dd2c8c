"""The ``scaleml`` command group, its entry point and the helpers its commands share.

Bad input ends with one line on standard error, ``error: ...``, and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from scaleml.cli._cluster import cluster
from scaleml.errors import ScalemlError, is_model_error

EXIT_USAGE = 2
Command = TypeVar("Command", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scaleml")
def cli() -> None:
    """scaleml: train, search and serve models on a Dask cluster, tracked in MLflow.

    Settings come from SCALEML_* environment variables (see the README); with
    SCALEML_SCHEDULER unset, a local cluster of worker processes is started.
    """


cli.add_command(cluster)


def training_options(param_help: str) -> Callable[[Command], Command]:
    """The options of every command that fits an estimator on a dataset: ``--data``,
    ``--target``, ``--estimator``, ``--param`` (described by ``param_help``), ``--features``."""
    options = [
        click.option(
            "--data", "data_path", required=True, help="Parquet/CSV file, directory, glob or URL."
        ),
        click.option("--target", required=True, help="The column to predict."),
        click.option("--estimator", required=True, help="Allow-listed class, e.g. SGDClassifier."),
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help=param_help),
        click.option(
            "--features", default=None, help="Comma-separated feature columns (default: all)."
        ),
    ]

    def apply(command: Command) -> Command:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def model_and_data_options(command: Command) -> Command:
    """The options of every command that applies a logged model to a dataset: ``--model``
    (an MLflow model URI) and ``--data``."""
    command = click.option(
        "--data", "data_path", required=True, help="Parquet/CSV file, directory or glob."
    )(command)
    return click.option(
        "--model",
        "model_uri",
        required=True,
        help="MLflow model URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/model) or "
        "NAME@ALIAS.",
    )(command)


class progress:
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
    except Exception as exc:
        if not is_model_error(exc):
            raise
        return _fail(f"a model of the search failed to fit: {type(exc).__name__}: {exc}")
    return result if isinstance(result, int) else 0


def _fail(message: str) -> int:
    first_line = " ".join(message.split())
    click.echo(f"error: {first_line}", err=True)
    return EXIT_USAGE
