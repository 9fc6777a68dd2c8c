"""``scaleml search``: a hyper-parameter search on out-of-core data, tracked in MLflow.

Everything the user typed is checked (estimator, space, method, options) before a cluster is
started. Adaptive searches show a live progress bar of ``partial_fit`` calls with the best
score so far; grid and random searches report their candidates when dask-ml's fit returns.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from scaleml.cli._app import cli, training_options
from scaleml.cli._promote import print_promotion, promote_option
from scaleml.errors import SearchSpaceError

# scaleml.search.SEARCH_METHODS, spelled out so that --help does not import the search stage
# (a test keeps the two in step).
_METHODS = ("incremental", "hyperband", "halving", "grid", "random")


@cli.command()
@training_options("Fixed estimator parameter (repeatable); values parse as JSON when they can.")
@click.option(
    "--space",
    "space_source",
    required=True,
    metavar="FILE|JSON",
    help='Search space: a JSON file, or JSON text, e.g. \'{"alpha": {"distribution": '
    '"loguniform", "low": 1e-5, "high": 1}, "penalty": ["l2", "elasticnet"]}\'.',
)
@click.option("--method", type=click.Choice(_METHODS), required=True, help="Search algorithm.")
@click.option(
    "--max-iter",
    type=click.IntRange(min=1),
    default=None,
    help="Most partial_fit calls per model (incremental, halving, hyperband).",
)
@click.option(
    "--n-initial-parameters",
    type=click.IntRange(min=1),
    default=None,
    help="Parameter settings sampled (incremental, halving; for random: candidates).",
)
@click.option("--scoring", default=None, help="scikit-learn scorer name (default: estimator's).")
@click.option(
    "--random-state",
    type=int,
    default=None,
    help="Seeds sampling, split and order, and the estimator (unless --param random_state=).",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Other search option (repeatable), e.g. patience=5, aggressiveness=4, cv=5.",
)
@click.option("--register", "register_as", default=None, help="Register the best model as NAME.")
@click.option("--alias", default="champion", show_default=True, help="Alias moved on register.")
@promote_option
@click.option(
    "--top", type=click.IntRange(min=1), default=10, show_default=True, help="Leaderboard rows."
)
def search(
    data_path: str,
    target: str,
    estimator: str,
    space_source: str,
    method: str,
    params: tuple[str, ...],
    features: str | None,
    max_iter: int | None,
    n_initial_parameters: int | None,
    scoring: str | None,
    random_state: int | None,
    options: tuple[str, ...],
    register_as: str | None,
    alias: str,
    promote: str,
    top: int,
) -> None:
    """Search an estimator's hyper-parameters on the cluster and log every trial to MLflow.

    Methods: incremental, hyperband, halving (adaptive, partial_fit estimators, out of core);
    grid, random (dask-ml, in-memory estimators: the training blocks are read into the
    workers' memory, each fit holding a whole training fold).
    """
    from scaleml.cluster import connect
    from scaleml.config import get_settings
    from scaleml.data import Dataset
    from scaleml.estimators import from_spec, parse_param
    from scaleml.search import make_search
    from scaleml.tracking import Tracker, search_and_log

    settings = get_settings()
    fixed = dict(parse_param(p) for p in params)
    model = from_spec({"estimator": estimator, "params": fixed})
    if (
        random_state is not None
        and "random_state" in model.get_params()
        and "random_state" not in fixed
    ):
        model.set_params(random_state=random_state)  # one seed: the same models every run
    search_options = dict(parse_param(o) for o in options)
    search_options.update(
        _method_options(method, max_iter, n_initial_parameters, scoring, random_state)
    )
    searcher = make_search(method, model, _read_space(space_source), **search_options)
    dataset = Dataset(data_path, target=target, features=features.split(",") if features else None)
    tracker = Tracker(settings)
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    with connect(settings, announce=announce) as client, _Progress(searcher, method) as progress:
        tracked = search_and_log(
            searcher,
            dataset,
            tracker=tracker,
            client=client,
            register_as=register_as,
            alias=alias,
            promote=promote,
            on_record=progress.record,
        )
        from scaleml.cli._evaluate import evaluate_final_model

        evaluate_final_model(tracked.model_uri, tracked.run_id, dataset, settings, client)
    _print_leaderboard(tracked.search, top)
    click.echo(f"best score {tracked.best_score:.6g} with {json.dumps(tracked.best_params)}")
    click.echo(f"MLflow run {tracked.run_id} in experiment {tracker.experiment_name!r}")
    click.echo(f"model {tracked.model_uri}")
    print_promotion(tracked.promotion)


def _method_options(
    method: str,
    max_iter: int | None,
    n_initial_parameters: int | None,
    scoring: str | None,
    random_state: int | None,
) -> dict[str, Any]:
    given = {"max_iter": max_iter, "n_initial_parameters": n_initial_parameters}
    applies = {
        "incremental": {"max_iter", "n_initial_parameters"},
        "halving": {"max_iter", "n_initial_parameters"},
        "hyperband": {"max_iter"},
        "grid": set(),
        "random": {"n_initial_parameters"},
    }[method]
    for name, value in given.items():
        if value is not None and name not in applies:
            flag = "--" + name.replace("_", "-")
            raise SearchSpaceError(f"{flag} does not apply to --method {method}")
    out: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if method == "random" and "n_initial_parameters" in out:
        out["n_iter"] = out.pop("n_initial_parameters")
    if scoring is not None:
        out["scoring"] = scoring
    if random_state is not None:
        if method == "grid":
            raise SearchSpaceError("--random-state does not apply to --method grid")
        out["random_state"] = random_state
    return out


def _read_space(source: str) -> dict[str, Any]:
    text = source
    if not source.lstrip().startswith("{"):
        path = Path(source)
        if not path.is_file():
            raise SearchSpaceError(f"--space: no such file {source!r} (give a file or JSON text)")
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SearchSpaceError(f"--space is not valid JSON: {exc}") from None


class _Progress:
    """A tqdm bar on standard error: ``partial_fit`` calls (adaptive) or candidates (grid and
    random), with the best score so far."""

    def __init__(self, search: Any, method: str) -> None:
        self.adaptive = method in ("incremental", "hyperband", "halving")
        self.total = _expected_total(search, method)
        self.calls: dict[Any, int] = {}
        self.best: float | None = None
        self.bar: Any = None
        self.method = method

    def __enter__(self) -> _Progress:
        from tqdm.auto import tqdm

        unit = "call" if self.adaptive else "candidate"
        self.bar = tqdm(total=self.total, desc=f"{self.method} search", unit=unit, file=sys.stderr)
        if not self.adaptive:
            self.bar.write(
                "dask-ml fits every candidate before reporting; the Dask dashboard shows its "
                "tasks meanwhile",
                file=sys.stderr,
            )
        return self

    def record(self, record: dict[str, Any]) -> None:
        """Called by the search for every history record or candidate summary."""
        score = record.get("score", record.get("mean_test_score"))
        if score is not None and (self.best is None or score > self.best):
            self.best = float(score)
            self.bar.set_postfix(best=f"{self.best:.4f}", refresh=False)
        self.calls[record["model_id"]] = int(record.get("partial_fit_calls", 1))
        done = sum(self.calls.values())
        self.bar.total = max(self.bar.total or 0, done)
        self.bar.n = done
        self.bar.refresh()

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _expected_total(search: Any, method: str) -> int | None:
    if method in ("hyperband", "halving"):
        return int(search.metadata["partial_fit_calls"])
    if method == "incremental":
        return int(search.n_initial_parameters) * int(search.max_iter or 100)
    if method == "grid":
        from sklearn.model_selection import ParameterGrid

        return len(ParameterGrid(search.param_grid))
    return int(search.n_iter)


def _print_leaderboard(search: Any, top: int) -> None:
    results = search.cv_results_
    score_key = "test_score" if "test_score" in results else "mean_test_score"
    order = sorted(range(len(results["params"])), key=lambda i: results["rank_test_score"][i])
    ids = results.get("model_id", list(range(len(order))))
    calls = results.get("partial_fit_calls")
    chosen = getattr(search, "best_index_", None)
    header = f"{'rank':>4}  {'model':<16} {'score':>9}" + ("  calls" if calls is not None else "")
    click.echo(header + "  params")
    for i in order[:top]:
        line = f"{results['rank_test_score'][i]:>4}  {ids[i]!s:<16} {results[score_key][i]:>9.5f}"
        if calls is not None:
            line += f"  {calls[i]:>5}"
        mark = "  <- chosen" if i == chosen else ""
        click.echo(f"{line}  {json.dumps(results['params'][i], default=_plain)}{mark}")
    if len(order) > top:
        click.echo(f"... {len(order) - top} more in MLflow")
    if chosen is not None:
        rule = (
            " (Hyperband: the best of the best bracket's survivors)" if "bracket" in results else ""
        )
        click.echo(
            f"chosen (logged and registered): model {ids[chosen]}, rank "
            f"{results['rank_test_score'][chosen]}, score {results[score_key][chosen]:.5f}{rule}"
        )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
