"""``compare``: several models on the same rows, in one pass over the data, as a leaderboard."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaleml.insight._errors import InsightError, SignatureMismatchError, UnknownMetricError
from scaleml.insight._evaluate import build_result, check_metrics, check_request
from scaleml.insight._pass import check_features, plan_for, run_pass
from scaleml.insight._result import EvaluationResult, _finite
from scaleml.insight._stats import DEFAULT_BINS

if TYPE_CHECKING:
    from distributed import Client

    from scaleml.data import Dataset

LOWER_IS_BETTER = {
    "log_loss",
    "brier_score",
    "hamming_loss",
    "zero_one_loss",
    "mae",
    "mse",
    "rmse",
    "max_error",
    "mape",
    "median_absolute_error",
}
DEFAULT_SORT = {"classifier": "accuracy", "regressor": "r2"}
LEADERBOARD_METRICS = {
    "classifier": ("accuracy", "balanced_accuracy", "f1_macro", "mcc", "roc_auc", "log_loss"),
    "regressor": ("r2", "rmse", "mae", "median_absolute_error", "mape", "max_error"),
}


@dataclass
class Comparison:
    """Models evaluated on the same rows, best first by ``sort_by``."""

    sort_by: str
    kind: str
    results: list[EvaluationResult]
    seconds: float
    rows: int
    dataset: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    """The MLflow run the comparison was logged to, when it was."""

    @property
    def leaderboard(self) -> list[dict[str, Any]]:
        """One row per model, best first: rank, name, URI and the leaderboard's metrics."""
        names = [self.sort_by, *(m for m in LEADERBOARD_METRICS[self.kind] if m != self.sort_by)]
        return [
            {
                "rank": rank,
                "name": result.name,
                "model_uri": result.model_uri,
                **{m: result.metrics.get(m) for m in names},
            }
            for rank, result in enumerate(self.results, 1)
        ]

    @property
    def best(self) -> EvaluationResult:
        """The first model of the leaderboard."""
        return self.results[0]

    def to_dict(self) -> dict[str, Any]:
        """The leaderboard and every model's metrics, JSON-able."""
        return _finite(
            {
                "sort_by": self.sort_by,
                "kind": self.kind,
                "rows": self.rows,
                "seconds": self.seconds,
                "dataset": self.dataset,
                "leaderboard": self.leaderboard,
                "models": {r.name: r.metrics for r in self.results},
            }
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def report(self, path: str | Path, *, sections: list[Any] | None = None) -> Path:
        """Write the comparison's self-contained HTML report."""
        from scaleml.insight._report_compare import write_comparison_report

        return write_comparison_report(self, path, sections=sections)


def compare(
    models: list[Any] | dict[str, Any],
    dataset: Dataset,
    *,
    sort_by: str | None = None,
    split: str = "validation",
    sensitive_features: list[str] | str | None = None,
    bins: int = DEFAULT_BINS,
    client: Client | None = None,
    on_block_done: Callable[[int, int], object] | None = None,
    settings: Any = None,
    train: list[Any] | None = None,
) -> Comparison:
    """Evaluate several models on the same rows in one pass over ``dataset`` (each block is
    read once, by one task that predicts it with every model) and rank them by ``sort_by``.

    Args:
        models: fitted models or MLflow model URIs, as a list or ``{name: model}`` (see
            :func:`scaleml.insight.compare_logged` for registered versions, an experiment's
            runs or a search's trials).
        dataset: the rows, with the target the models predict.
        sort_by: the metric to rank by (default accuracy for classifiers, R² for regressors);
            losses and errors rank ascending, scores descending.
        split, sensitive_features, bins, client, on_block_done: as for
            :func:`scaleml.insight.evaluate`.
        settings: scaleml settings for loading URIs from MLflow.
        train: estimator specs to train first, all at once on the cluster, and add to
            ``models``, the way PyCaret's ``compare_models`` does: ``[{"estimator":
            {"estimator": "SGDClassifier", "params": {...}}, "epochs": 2}, {"estimator":
            {"estimator": "DaskXGBClassifier", "params": {...}}}]`` (see
            :mod:`scaleml.insight._candidates`). Incremental estimators train out of core,
            XGBoost / LightGBM with scaleml's Dask boosting; the comparison is then logged to
            MLflow (:func:`scaleml.insight.compare_logged`), each training in a run nested
            under the comparison's run. Every spec is checked before anything trains.

    Raises:
        InsightError: no models, or models of different kinds (classifier and regressor).
        CandidateSpecError: a ``train`` spec is invalid (unknown estimator or parameter...).
        UnknownMetricError: ``sort_by`` is not a metric of the models' kind.
        SignatureMismatchError: a model's inputs do not match the dataset's features (the
            message names the model).
    """
    if train:
        from scaleml.insight._logged import compare_logged

        return compare_logged(
            _named(models),
            dataset,
            train=train,
            settings=settings,
            sort_by=sort_by,
            split=split,
            sensitive_features=sensitive_features,
            bins=bins,
            client=client,
            on_block_done=on_block_done,
        )
    named = _named(models)
    if not named:
        raise InsightError("compare needs at least one model")
    loaded = {name: _load(model, settings) for name, model in named.items()}
    plans = {}
    for name, (model, expected, _) in loaded.items():
        try:
            check_features(model, list(dataset.features), expected)
        except SignatureMismatchError as exc:
            raise SignatureMismatchError(f"model {name!r}: {exc}") from None
        plans[name] = plan_for(model, list(dataset.features), bins)
    kinds = {plan.kind for plan in plans.values()}
    if len(kinds) > 1:
        raise InsightError("compare needs models of one kind: got classifiers and regressors")
    kind = kinds.pop()
    sort_by = sort_by or DEFAULT_SORT[kind]
    first = next(iter(plans.values()))
    check_metrics(first, [sort_by])
    if sort_by.endswith("_error_bound"):
        raise UnknownMetricError(f"cannot rank by {sort_by!r}")
    request = check_request(first, dataset, None, sensitive_features, split)
    started = time.perf_counter()
    merged = run_pass(
        [model for model, _, _ in loaded.values()],
        list(plans.values()),
        request.blocks,
        list(dataset.features),
        dataset.target,
        request.sensitive,
        client=client,
        on_block_done=on_block_done,
    )
    seconds = time.perf_counter() - started
    results = [
        build_result(name, plans[name], stats, dataset, request, seconds, loaded[name][2])
        for name, stats in zip(loaded, merged, strict=True)
    ]
    descending = sort_by not in LOWER_IS_BETTER
    missing = float("-inf") if descending else float("inf")
    results.sort(key=lambda r: r.metrics.get(sort_by, missing), reverse=descending)
    return Comparison(sort_by, kind, results, seconds, results[0].rows, results[0].dataset)


def _named(models: list[Any] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(models, dict):
        return dict(models)
    named: dict[str, Any] = {}
    for model in models:
        base = model if isinstance(model, str) else type(model).__name__
        name, number = base, 2
        while name in named:
            name, number = f"{base} #{number}", number + 1
        named[name] = model
    return named


def _load(model: Any, settings: Any) -> tuple[Any, list[str] | None, str | None]:
    """``(fitted model, signature input names, URI)``."""
    if isinstance(model, str):
        from scaleml.tracking import load_evaluable

        loaded = load_evaluable(model, settings=settings)
        return loaded.model, loaded.input_names, loaded.uri
    return model, None, None
