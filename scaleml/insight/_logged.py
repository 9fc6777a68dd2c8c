"""Evaluations of MLflow models, and evaluations logged to MLflow (through scaleml.tracking)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaleml.insight._evaluate import evaluate_fitted
from scaleml.insight._result import EvaluationResult
from scaleml.insight._stats import DEFAULT_BINS

if TYPE_CHECKING:
    from distributed import Client

    from scaleml.data import Dataset


def evaluate_logged(
    model: Any,
    dataset: Dataset,
    *,
    split: str = "validation",
    metrics: list[str] | None = None,
    sensitive_features: list[str] | str | None = None,
    name: str | None = None,
    bins: int = DEFAULT_BINS,
    client: Client | None = None,
    on_block_done: Callable[[int, int], object] | None = None,
    log: bool = False,
    settings: Any = None,
    report: bool = True,
    run_id: str | None = None,
    report_path: str | Path | None = None,
    sections: list[Any] | None = None,
) -> EvaluationResult:
    """:func:`scaleml.insight.evaluate` for a model URI and/or with MLflow logging.

    A URI's model is loaded with its signature (checked against the dataset's features) and
    its run's learning history (drawn in the report). With ``log``, the evaluation goes to
    ``run_id``, else to the model's own run (so the registered model's run shows the report),
    after it succeeded: nothing is logged for a failed evaluation. A fitted model without a run
    is evaluated inside a new run, which ends FAILED if the evaluation fails.
    """
    from scaleml.tracking import learning_history, load_evaluable

    expected, uri, history = None, None, {}
    if isinstance(model, str) or hasattr(model, "input_names"):  # a URI or EvaluableModel
        loaded = load_evaluable(model, settings=settings) if isinstance(model, str) else model
        model, expected, uri = loaded.model, loaded.input_names, loaded.uri
        run_id = run_id or loaded.run_id
        if run_id:
            history = learning_history(run_id, settings=settings)
    options = {
        "split": split,
        "metrics": metrics,
        "sensitive_features": sensitive_features,
        "name": name or uri,
        "bins": bins,
        "client": client,
        "on_block_done": on_block_done,
        "expected_features": expected,
        "model_uri": uri,
    }
    if not log:
        result = evaluate_fitted(model, dataset, **options)
        result.history = history
        if report_path is not None:
            result.report(report_path, sections=sections)
        return result
    if run_id:
        result = evaluate_fitted(model, dataset, **options)
        result.history = history
        log_result(result, run_id, dataset, settings=settings, report=report, sections=sections)
    else:
        from scaleml.tracking import Tracker

        tracker = Tracker(settings)
        label = name or type(model).__name__
        tags = {"scaleml.kind": "evaluation"}
        with tracker.run(f"evaluate-{label}", tags=tags) as run:
            result = evaluate_fitted(model, dataset, **options)
            _log_to(run, result, dataset, report=report, sections=sections)
    if report_path is not None:
        result.report(report_path, sections=sections)
    return result


def log_result(
    result: EvaluationResult,
    run_id: str,
    dataset: Dataset | None,
    *,
    settings: Any = None,
    report: bool = True,
    sections: list[Any] | None = None,
    prefix: str = "",
) -> None:
    """Log ``result`` to the existing run ``run_id``."""
    from scaleml.tracking import RunLogger, configure

    run = RunLogger(configure(settings), run_id)
    _log_to(run, result, dataset, report=report, sections=sections, prefix=prefix)


def _log_to(
    run: Any,
    result: EvaluationResult,
    dataset: Dataset | None,
    *,
    report: bool,
    sections: list[Any] | None,
    prefix: str = "",
) -> None:
    from scaleml.tracking import log_evaluation

    data = result.to_dict()
    curves = data.pop("curves")
    with tempfile.TemporaryDirectory() as folder:
        page = result.report(Path(folder) / "report.html", sections=sections) if report else None
        log_evaluation(
            run,
            metrics=result.metrics,
            results=data,
            curves=curves,
            dataset=dataset,
            report=page,
            prefix=prefix,
            tags={"scaleml.evaluated": "true", "scaleml.eval_rows": result.rows},
        )


def compare_logged(
    models: list[Any] | dict[str, Any] | None,
    dataset: Dataset,
    *,
    registered: str | None = None,
    experiment: str | None = None,
    parent_run: str | None = None,
    train: list[Any] | None = None,
    settings: Any = None,
    log: bool = True,
    report_path: str | Path | None = None,
    sections: list[Any] | None = None,
    tags: dict[str, str] | None = None,
    **options: Any,
) -> Any:
    """:func:`scaleml.insight.compare` over explicit models and/or the models MLflow holds
    (every version of ``registered``, the runs of ``experiment`` that logged a model, a
    search's trials under ``parent_run``), plus the models ``train`` specs describe, trained
    first, all at once on the cluster (see :mod:`scaleml.insight._candidates`). With ``log``,
    the comparison is a parent run holding the leaderboard (``insight/leaderboard.json`` and an
    MLflow table), the report and the best model's ``eval_`` metrics, with each trained model's
    run nested under it (holding its own ``eval_`` metrics from the same pass); the run ends
    FAILED if a training or the comparison fails. Every ``train`` spec is checked before
    anything trains or any run starts. ``tags`` are set on every run it opens (a job's id).

    Raises:
        InsightError: no model to compare.
        CandidateSpecError: a ``train`` spec is invalid (the message names it and its field).
        TrackingError: an unknown registered model, experiment or run.
    """
    from scaleml.insight._candidates import check_candidates
    from scaleml.insight._compare import compare
    from scaleml.tracking import Tracker, candidate_models, log_evaluation

    named: dict[str, Any] = dict(models) if isinstance(models, dict) else {}
    if isinstance(models, list):
        named.update(
            {m if isinstance(m, str) else f"model {i + 1}": m for i, m in enumerate(models)}
        )
    if registered or experiment or parent_run:
        named.update(
            candidate_models(
                registered=registered,
                experiment=experiment,
                parent_run=parent_run,
                settings=settings,
            )
        )
    candidates = check_candidates(train, set(named)) if train else {}
    if not log:
        trained = _train(candidates, dataset, settings, None, options)
        named.update({t.name: t.model_uri for t in trained})
        comparison = compare(named, dataset, settings=settings, **options)
        if report_path is not None:
            comparison.report(report_path, sections=sections)
        return comparison
    tracker = Tracker(settings, tags=tags)
    total = len(named) + len(candidates)
    with tracker.run(f"compare-{total}-models", tags={"scaleml.kind": "comparison"}) as run:
        trained = _train(candidates, dataset, settings, run.run_id, options, tags)
        named.update({t.name: t.model_uri for t in trained})
        comparison = compare(named, dataset, settings=settings, **options)
        _log_trained(comparison, trained, dataset, settings)
        if trained:
            run.log_params({"compare.trained": len(trained)})
        board = comparison.leaderboard
        run.log_params({"compare.sort_by": comparison.sort_by, "compare.models": len(board)})
        run.client.log_table(
            run.run_id,
            {k: [r[k] for r in board] for k in board[0]},
            "insight/leaderboard_table.json",
        )
        with tempfile.TemporaryDirectory() as folder:
            page = comparison.report(Path(folder) / "report.html", sections=sections)
            best = comparison.best
            data = comparison.to_dict()
            log_evaluation(
                run,
                metrics=best.metrics,
                results=data,
                curves={r.name: r.curves for r in comparison.results},
                dataset=dataset,
                report=page,
                tags={"scaleml.best_model": best.name, "scaleml.best_model_uri": best.model_uri},
            )
            run.log_dict({"leaderboard": board}, "insight/leaderboard.json")
        comparison.run_id = run.run_id
    if report_path is not None:
        comparison.report(report_path, sections=sections)
    return comparison


def _train(
    candidates: dict[str, Any],
    dataset: Dataset,
    settings: Any,
    parent_run_id: str | None,
    options: dict[str, Any],
    tags: dict[str, str] | None = None,
) -> list[Any]:
    if not candidates:
        return []
    from scaleml.insight._candidates import train_candidates

    return train_candidates(
        candidates,
        dataset,
        settings=settings,
        parent_run_id=parent_run_id,
        client=options.get("client"),
        tags=tags,
    )


def _log_trained(comparison: Any, trained: list[Any], dataset: Dataset, settings: Any) -> None:
    """Each trained model's ``eval_`` metrics (from the comparison's pass) into its run."""
    results = {result.name: result for result in comparison.results}
    for model in trained:
        log_result(results[model.name], model.run_id, dataset, settings=settings, report=False)
