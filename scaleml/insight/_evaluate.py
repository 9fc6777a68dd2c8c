"""``evaluate``: a model's metrics, curves and fairness on a dataset, computed on the cluster."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from scaleml.insight._classification import (
    BINARY_METRICS,
    CLASSIFIER_METRICS,
    PROBA_METRICS,
    classifier_curves,
    classifier_metrics,
)
from scaleml.insight._errors import InsightError, SensitiveFeatureError, UnknownMetricError
from scaleml.insight._fairness import MAX_GROUPS, fairness
from scaleml.insight._pass import plan_for, run_pass
from scaleml.insight._regression import REGRESSOR_METRICS, regressor_curves, regressor_metrics
from scaleml.insight._result import EvaluationResult
from scaleml.insight._stats import DEFAULT_BINS
from scaleml.insight._tasks import ALL, ModelPlan

if TYPE_CHECKING:
    from distributed import Client

    from scaleml.data import Dataset

Split = Literal["validation", "all", "train"]
CURVE_NAMES = {"roc", "precision_recall", "calibration", "lift_gain", "thresholds", "ks"}


def evaluate(
    model: Any,
    dataset: Dataset,
    *,
    split: Split = "validation",
    metrics: list[str] | None = None,
    sensitive_features: list[str] | str | None = None,
    name: str | None = None,
    bins: int = DEFAULT_BINS,
    client: Client | None = None,
    on_block_done: Callable[[int, int], object] | None = None,
    log: bool = False,
    settings: Any = None,
    report: bool = True,
) -> EvaluationResult:
    """Evaluate a fitted model on ``dataset``, block by block on the workers.

    Each block is read and predicted by one task on a worker (the model is sent to each
    worker once); only sufficient statistics (confusion matrices, sums, score histograms)
    reach this process, so memory stays flat whatever the dataset's size.

    Args:
        model: a fitted scikit-learn / XGBoost / LightGBM classifier or regressor, or an MLflow
            model URI (``models:/name@alias``, ``models:/name/3``, ``runs:/id/model``).
        dataset: the rows, with the target the model predicts.
        split: ``"validation"`` (the dataset's validation blocks; all blocks when it has none),
            ``"train"`` or ``"all"``.
        metrics: keep only these metrics (default: every one for the model's kind). Classifier
            metrics: those of :mod:`scaleml.insight._classification` (accuracy, f1_macro,
            roc_auc, log_loss, ...); regressor metrics: mae, mse, rmse, r2, ... The curve
            names ``roc``, ``precision_recall``, ``calibration``, ``lift_gain`` and
            ``thresholds`` are accepted for classifiers.
        sensitive_features: column(s) of the dataset's files: adds metrics by group (the
            combinations of their values), differences and ratios between groups, demographic
            parity and equalized odds differences (see :mod:`scaleml.insight._fairness`).
        name: the model's name in the report (default: the URI or the class name).
        bins: score histogram bins for AUC, average precision and the curves (the bounds of
            their error are in :mod:`scaleml.insight._classification` and in ``metrics``).
        client: the Dask client; the current one when omitted.
        on_block_done: called with ``(blocks_done, blocks_total)``.
        log: log the evaluation to MLflow (the model's run when ``model`` is a URI, else a new
            run): ``eval_`` metrics, the dataset input, ``insight/report.html``,
            ``insight/metrics.json`` and ``insight/curves.json``.
        settings: scaleml settings for MLflow (URI models and ``log``).
        report: with ``log``, also render and log the HTML report.

    Raises:
        UnknownMetricError: a metric the model's kind does not have (e.g. ROC for a regressor).
        SensitiveFeatureError: a sensitive feature that is not a column of the dataset.
        SignatureMismatchError: the model's inputs do not match the dataset's features.
        InsightError: other bad arguments (no target, a label the model does not know).
        DatasetError: bad data (subclasses name the file, column and row).
    """
    if log or isinstance(model, str):
        from scaleml.insight._logged import evaluate_logged

        return evaluate_logged(
            model,
            dataset,
            split=split,
            metrics=metrics,
            sensitive_features=sensitive_features,
            name=name,
            bins=bins,
            client=client,
            on_block_done=on_block_done,
            log=log,
            settings=settings,
            report=report,
        )
    return evaluate_fitted(
        model,
        dataset,
        split=split,
        metrics=metrics,
        sensitive_features=sensitive_features,
        name=name,
        bins=bins,
        client=client,
        on_block_done=on_block_done,
    )


def evaluate_fitted(
    model: Any,
    dataset: Dataset,
    *,
    split: Split = "validation",
    metrics: list[str] | None = None,
    sensitive_features: list[str] | str | None = None,
    name: str | None = None,
    bins: int = DEFAULT_BINS,
    client: Client | None = None,
    on_block_done: Callable[[int, int], object] | None = None,
    expected_features: list[str] | None = None,
    model_uri: str | None = None,
) -> EvaluationResult:
    """:func:`evaluate` for a fitted model, without MLflow (``expected_features``: the input
    names of its MLflow signature, checked against the dataset's features)."""
    from scaleml.insight._pass import check_features

    check_features(model, list(dataset.features), expected_features)
    plan = plan_for(model, list(dataset.features), bins)
    request = check_request(plan, dataset, metrics, sensitive_features, split)
    started = time.perf_counter()
    merged = run_pass(
        [model],
        [plan],
        request.blocks,
        list(dataset.features),
        dataset.target,
        request.sensitive,
        client=client,
        on_block_done=on_block_done,
    )[0]
    seconds = time.perf_counter() - started
    label = name or model_uri or type(model).__name__
    return build_result(label, plan, merged, dataset, request, seconds, model_uri)


class Request:
    """A checked evaluation request: blocks to read, sensitive columns, metrics to keep."""

    def __init__(
        self, blocks: list[Any], indices: list[int], sensitive: list[str], metrics: list[str] | None
    ) -> None:
        self.blocks = blocks
        self.indices = indices
        self.sensitive = sensitive
        self.metrics = metrics


def check_request(
    plan: ModelPlan,
    dataset: Dataset,
    metrics: list[str] | None,
    sensitive_features: list[str] | str | None,
    split: str,
) -> Request:
    """Check an evaluation's arguments before any work (see :func:`evaluate`'s Raises)."""
    if dataset.target is None:
        raise InsightError("the dataset has no target column: evaluation needs the true values")
    if metrics is not None:
        check_metrics(plan, metrics)
    sensitive = (
        [sensitive_features]
        if isinstance(sensitive_features, str)
        else list(sensitive_features or [])
    )
    available = set(dataset.source_columns)
    for column in sensitive:
        if column not in available:
            raise SensitiveFeatureError(
                f"sensitive feature {column!r} is not a column of the dataset (its columns: "
                f"{sorted(available)[:20]})"
            )
        if column == dataset.target:
            raise SensitiveFeatureError(f"sensitive feature {column!r} is the target")
    if split == "validation":
        indices = list(dataset.validation_blocks) or list(range(dataset.n_blocks))
    elif split == "train":
        indices = list(dataset.train_blocks)
    elif split == "all":
        indices = list(range(dataset.n_blocks))
    else:
        raise InsightError(f"split must be 'validation', 'train' or 'all', got {split!r}")
    return Request([dataset.blocks[i] for i in indices], indices, sensitive, metrics)


def all_metric_names() -> set[str]:
    """Every metric and curve name of any model kind."""
    return {*CLASSIFIER_METRICS, *REGRESSOR_METRICS, *CURVE_NAMES}


def metric_names(plan: ModelPlan) -> tuple[str, ...]:
    """The metric names a model of this plan's kind has."""
    if plan.kind == "regressor":
        return REGRESSOR_METRICS
    return CLASSIFIER_METRICS


def check_metrics(plan: ModelPlan, metrics: list[str]) -> None:
    """Raise :class:`UnknownMetricError` for a metric the model's kind does not have."""
    known = metric_names(plan)
    for metric in metrics:
        if plan.kind == "regressor" and (metric in CLASSIFIER_METRICS or metric in CURVE_NAMES):
            raise UnknownMetricError(
                f"metric {metric!r} is for classifiers and the model is a regressor; "
                f"regressor metrics: {', '.join(REGRESSOR_METRICS)}"
            )
        if metric in CURVE_NAMES and plan.kind == "classifier":
            if not plan.has_proba:
                raise UnknownMetricError(
                    f"{metric!r} needs class probabilities and the model has no predict_proba"
                )
            continue
        if metric not in known:
            raise UnknownMetricError(
                f"unknown metric {metric!r}; {plan.kind} metrics: {', '.join(known)}"
            )
        if metric in PROBA_METRICS and not plan.has_proba:
            raise UnknownMetricError(
                f"metric {metric!r} needs class probabilities and the model has no predict_proba"
            )
        if metric in BINARY_METRICS and len(plan.classes) != 2:
            raise UnknownMetricError(
                f"metric {metric!r} is for binary classifiers; the model has "
                f"{len(plan.classes)} classes (use {metric}_macro or {metric}_weighted)"
                if metric != "ks_statistic"
                else "metric 'ks_statistic' is for binary classifiers"
            )


def build_result(
    name: str,
    plan: ModelPlan,
    merged: dict[Any, Any],
    dataset: Dataset,
    request: Request,
    seconds: float,
    model_uri: str | None,
) -> EvaluationResult:
    """Metrics, curves and fairness from one model's merged statistics."""
    total = merged.get(ALL)
    if total is None or total.n == 0:
        raise InsightError("the evaluated blocks hold no rows")
    classes = list(plan.classes)
    if plan.kind == "classifier":
        computed = classifier_metrics(total, classes)
        curves = classifier_curves(total, classes)
    else:
        computed = regressor_metrics(total)
        curves = regressor_curves(total)
    values = computed["metrics"]
    if request.metrics is not None:
        wanted = set(request.metrics)
        values = {
            k: v
            for k, v in values.items()
            if k in wanted or k.removesuffix("_error_bound") in wanted
        }
    groups = {k: v for k, v in merged.items() if k != ALL}
    if len(groups) > MAX_GROUPS:
        raise SensitiveFeatureError(
            f"the sensitive features {request.sensitive} make {len(groups)} groups (at most "
            f"{MAX_GROUPS}): choose columns with fewer distinct values"
        )
    fair = fairness(groups, plan.kind, classes, request.sensitive) if request.sensitive else None
    described = {
        "source": str(dataset.source),
        "fingerprint": dataset.fingerprint,
        "target": dataset.target,
        "features": list(dataset.features),
        "blocks": len(request.indices),
        "n_blocks": dataset.n_blocks,
    }
    return EvaluationResult(
        name=name,
        kind=plan.kind,
        metrics=values,
        per_class=computed.get("per_class", {}),
        curves=curves,
        fairness=fair,
        dataset=described,
        model_uri=model_uri,
        seconds=seconds,
        rows=int(total.n),
    )
