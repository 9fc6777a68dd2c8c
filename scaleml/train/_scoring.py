"""Validation metrics computed block by block: per-block sufficient statistics that add up.

Workers compute :func:`block_statistics` on their block; the driver adds the small dicts and
turns the totals into metrics with :func:`metrics_from_statistics`. The result equals the
metric over all validation rows at once, without ever gathering them.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from sklearn.base import is_classifier, is_regressor

Kind = Literal["classifier", "regressor", "clusterer"]

HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "log_loss": False,
    "r2": True,
    "mse": False,
    "rmse": False,
    "mae": False,
    "inertia": False,
}
DEFAULT_SCORING: dict[Kind, str] = {
    "classifier": "accuracy",
    "regressor": "r2",
    "clusterer": "inertia",
}
_PROBABILITY_FLOOR = 1e-15


def estimator_kind(estimator: Any) -> Kind:
    """Classify an estimator as a classifier, a regressor or a clusterer."""
    if is_classifier(estimator):
        return "classifier"
    if is_regressor(estimator):
        return "regressor"
    return "clusterer"


def available_metrics(estimator: Any) -> list[str]:
    """The validation metrics reported for this estimator."""
    kind = estimator_kind(estimator)
    if kind == "classifier":
        return ["accuracy", "log_loss"] if _has_probabilities(estimator) else ["accuracy"]
    if kind == "regressor":
        return ["r2", "mse", "rmse", "mae"]
    return ["inertia"]


def block_statistics(
    estimator: Any, x: np.ndarray, y: np.ndarray | None, predicted: np.ndarray | None = None
) -> dict[str, float]:
    """Additive statistics of the fitted ``estimator`` on one block (``predicted``: its
    predictions on ``x``, when already made)."""
    kind = estimator_kind(estimator)
    stats: dict[str, float] = {"n": float(len(x))}
    if kind != "clusterer" and predicted is None:
        predicted = estimator.predict(x)
    if kind == "classifier":
        stats["correct"] = float(np.sum(predicted == y))
        if _has_probabilities(estimator):
            stats["log_loss_sum"] = _log_loss_sum(estimator, x, y)
    elif kind == "regressor":
        residual = y - predicted
        stats["sse"] = float(np.dot(residual, residual))
        stats["sae"] = float(np.sum(np.abs(residual)))
        stats["sum_y"] = float(np.sum(y))
        stats["sum_y2"] = float(np.dot(y, y))
    else:
        stats["inertia"] = float(-estimator.score(x))
    return stats


def add_statistics(parts: list[dict[str, float]]) -> dict[str, float]:
    """Sum per-block statistics."""
    total: dict[str, float] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0.0) + value
    return total


def metrics_from_statistics(total: dict[str, float]) -> dict[str, float]:
    """Turn summed statistics into metrics over all the rows they came from."""
    n = total.get("n", 0.0)
    if n == 0:
        return {}
    metrics: dict[str, float] = {}
    if "correct" in total:
        metrics["accuracy"] = total["correct"] / n
    if "log_loss_sum" in total:
        metrics["log_loss"] = total["log_loss_sum"] / n
    if "sse" in total:
        mse = total["sse"] / n
        variance_sum = total["sum_y2"] - total["sum_y"] ** 2 / n
        metrics["r2"] = 1.0 - total["sse"] / variance_sum if variance_sum > 0 else math.nan
        metrics["mse"] = mse
        metrics["rmse"] = math.sqrt(mse)
        metrics["mae"] = total["sae"] / n
    if "inertia" in total:
        metrics["inertia"] = total["inertia"] / n
    return metrics


def improved(score: float, best: float | None, scoring: str, tol: float) -> bool:
    """Whether ``score`` beats ``best`` by more than ``tol`` in the metric's direction."""
    if best is None:
        return True
    if HIGHER_IS_BETTER[scoring]:
        return score > best + tol
    return score < best - tol


def _has_probabilities(estimator: Any) -> bool:
    try:
        return callable(getattr(estimator, "predict_proba", None))
    except AttributeError:  # e.g. SGDClassifier with a loss that has no probabilities
        return False


def _log_loss_sum(estimator: Any, x: np.ndarray, y: np.ndarray) -> float:
    probabilities = np.clip(estimator.predict_proba(x), _PROBABILITY_FLOOR, 1.0)
    columns = np.searchsorted(estimator.classes_, y)
    columns = np.clip(columns, 0, len(estimator.classes_) - 1)
    known = estimator.classes_[columns] == y
    picked = np.where(known, probabilities[np.arange(len(y)), columns], _PROBABILITY_FLOOR)
    return float(-np.sum(np.log(picked)))
