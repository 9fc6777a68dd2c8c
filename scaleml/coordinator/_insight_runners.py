"""Runners of the insight job kinds: ``evaluate`` and ``compare`` (and the automatic
evaluation of the model a training, boosting or search job logged)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scaleml.coordinator.runners import JobContext
    from scaleml.coordinator.specs import CompareSpec, EvaluateSpec

logger = logging.getLogger(__name__)


def run_evaluate(spec: EvaluateSpec, context: JobContext) -> dict[str, Any]:
    """Evaluate ``spec.model`` on its dataset; log to the model's run; return the metrics."""
    from scaleml.coordinator.runners import make_dataset
    from scaleml.insight import evaluate_logged
    from scaleml.tracking import load_evaluable

    settings = _settings(context, spec.experiment)
    loaded = load_evaluable(spec.model, settings=settings)
    dataset_spec = spec.dataset
    if dataset_spec.features is None and loaded.input_names:
        dataset_spec = dataset_spec.model_copy(update={"features": loaded.input_names})
    dataset = make_dataset(dataset_spec)
    context.check()
    result = evaluate_logged(
        loaded,
        dataset,
        split=spec.split,
        metrics=spec.metrics,
        sensitive_features=spec.sensitive_features,
        client=context.client,
        on_block_done=lambda done, total: context.progress(done / total, f"{done}/{total} blocks"),
        log=True,
        settings=settings,
        report_path=spec.output,
    )
    return {
        "model_uri": loaded.uri,
        "run_id": loaded.run_id,
        "rows": result.rows,
        "metrics": result.to_dict()["metrics"],
        "fairness": result.to_dict()["fairness"],
        "report": spec.output,
    }


def run_compare(spec: CompareSpec, context: JobContext) -> dict[str, Any]:
    """Compare the spec's models in one pass; log a comparison run; return the leaderboard."""
    from scaleml.coordinator.runners import make_dataset
    from scaleml.insight import compare_logged
    from scaleml.tracking import load_evaluable

    settings = _settings(context, spec.experiment)
    dataset_spec = spec.dataset
    if dataset_spec.features is None and spec.models:
        names = load_evaluable(spec.models[0], settings=settings).input_names
        dataset_spec = dataset_spec.model_copy(update={"features": names})
    dataset = make_dataset(dataset_spec)
    context.check()
    comparison = compare_logged(
        list(spec.models),
        dataset,
        registered=spec.registered,
        experiment=spec.experiment_runs,
        parent_run=spec.search_run,
        train=spec.train or None,
        settings=settings,
        report_path=spec.output,
        sort_by=spec.sort_by,
        split=spec.split,
        client=context.client,
        on_block_done=lambda done, total: context.progress(done / total, f"{done}/{total} blocks"),
        tags={"scaleml.job_id": context.job_id, "scaleml.attempt": str(context.attempt)},
    )
    return {
        "run_id": comparison.run_id,
        "sort_by": comparison.sort_by,
        "rows": comparison.rows,
        "leaderboard": comparison.to_dict()["leaderboard"],
        "best_model": comparison.best.name,
        "report": spec.output,
    }


def auto_evaluate(spec: Any, result: dict[str, Any], context: JobContext) -> None:
    """Evaluate the model a training, boosting or search job logged, on its dataset's
    validation blocks, into the job's run (``SCALEML_AUTO_EVALUATE=false`` turns it off).
    A failure is logged and leaves the job's result as it was."""
    if not context.settings.auto_evaluate or not result.get("model_uri"):
        return
    from scaleml.coordinator.runners import make_dataset
    from scaleml.insight import evaluate_logged

    try:
        context.progress(None, "evaluating the model")
        evaluate_logged(
            result["model_uri"],
            make_dataset(spec.dataset),
            client=context.client,
            log=True,
            settings=_settings(context, getattr(spec, "experiment", None)),
            run_id=result.get("run_id"),
        )
        result["evaluated"] = True
    except Exception as exc:  # the model is logged and registered: keep the job's success
        logger.warning("automatic evaluation of %s failed: %s", result["model_uri"], exc)
        result["evaluation_error"] = f"{type(exc).__name__}: {exc}"[:1000]


def _settings(context: JobContext, experiment: str | None) -> Any:
    if experiment:
        return context.settings.model_copy(update={"experiment": experiment})
    return context.settings
