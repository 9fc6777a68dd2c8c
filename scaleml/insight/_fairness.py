"""Fairness by group, from the per-group statistics an evaluation merged out of core.

The figures follow fairlearn's :class:`~fairlearn.metrics.MetricFrame` (``by_group``,
``difference()`` and ``ratio()`` with ``method="between_groups"``), its
``demographic_parity_difference`` and ``equalized_odds_difference`` (binary classifiers: the
positive class is the model's second class), computed from the same sums as the overall
metrics, so they equal fairlearn's on the same rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaleml.insight._classification import classifier_metrics
from scaleml.insight._regression import regressor_metrics
from scaleml.insight._stats import ClassifierStats, RegressorStats

MAX_GROUPS = 200


def group_label(key: tuple[Any, ...]) -> str:
    """A group's name: its sensitive values joined by ``|`` (``None`` for a missing value)."""
    return " | ".join("None" if v is None else str(v) for v in key)


def fairness(
    groups: dict[tuple[Any, ...], ClassifierStats | RegressorStats],
    kind: str,
    classes: list[Any],
    sensitive: list[str],
) -> dict[str, Any]:
    """By-group metrics, their differences (max - min) and ratios (min / max) between
    groups, and for binary classifiers demographic parity and equalized odds differences."""
    by_group: dict[str, dict[str, float]] = {}
    for key in sorted(groups, key=lambda k: tuple(str(v) for v in k)):
        stats = groups[key]
        if kind == "classifier":
            metrics = classifier_metrics(stats, classes)["metrics"]
            metrics["selection_rate"] = _selection_rate(stats)
        else:
            metrics = regressor_metrics(stats)["metrics"]
        metrics["count"] = float(stats.n)
        by_group[group_label(key)] = metrics
    names = sorted(set.intersection(*(set(m) for m in by_group.values()))) if by_group else []
    names = [n for n in names if n != "count" and not n.endswith("_error_bound")]
    difference, ratio = {}, {}
    for name in names:
        values = np.array([m[name] for m in by_group.values()], dtype=np.float64)
        difference[name] = float(values.max() - values.min())
        ratio[name] = float(values.min() / values.max()) if values.max() != 0 else float("nan")
    result: dict[str, Any] = {
        "sensitive_features": list(sensitive),
        "by_group": by_group,
        "difference": difference,
        "ratio": ratio,
    }
    if kind == "classifier" and len(classes) == 2 and by_group:
        rates = [_selection_rate(s) for s in groups.values()]
        tprs = [_rate(s.confusion[1, 1], s.confusion[1].sum()) for s in groups.values()]
        fprs = [_rate(s.confusion[0, 1], s.confusion[0].sum()) for s in groups.values()]
        result["demographic_parity_difference"] = float(max(rates) - min(rates))
        result["demographic_parity_ratio"] = _safe_ratio(min(rates), max(rates))
        result["equalized_odds_difference"] = float(
            max(max(tprs) - min(tprs), max(fprs) - min(fprs))
        )
    return result


def _selection_rate(stats: ClassifierStats) -> float:
    """The share of rows predicted as the positive (second) class; for multiclass models the
    share predicted as the last class."""
    predicted = stats.confusion.sum(axis=0)
    return _rate(predicted[-1], stats.n)


def _rate(top: float, bottom: float) -> float:
    return float(top / bottom) if bottom else 0.0


def _safe_ratio(low: float, high: float) -> float:
    return float(low / high) if high else float("nan")
