"""Regressor metrics and pictures from merged :class:`RegressorStats`.

Exact (equal to scikit-learn's on the same rows to 1e-9, relative): MAE, MSE, RMSE, R²,
explained variance, max error, MAPE (scikit-learn's definition: ``|y - p| / max(|y|, eps)``),
and the residuals' mean and standard deviation.

From the histogram of absolute residuals (log-spaced bins, 1000 per decade): the median
absolute error is the geometric middle of the bin holding the median, so
``|median_absolute_error - exact| <= 1.2e-3 * exact + 1e-9`` (one bin spans a factor
``10 ** (1 / 1000)``; residuals below 1e-9 count as 0).

Predicted against actual and the residual distribution are drawn from a uniform sample of
at most 300 rows per block (every row is in the metrics; only the picture is sampled).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaleml.insight._stats import RegressorStats, log_bin_edges

REGRESSOR_METRICS = (
    "mae",
    "mse",
    "rmse",
    "r2",
    "explained_variance",
    "max_error",
    "mape",
    "median_absolute_error",
    "residual_mean",
    "residual_std",
)
REGRESSOR_CURVES = ("residuals", "predicted_vs_actual")
MEDIAN_RELATIVE_BOUND = 1.2e-3
RESIDUAL_BINS = 60


def regressor_metrics(stats: RegressorStats) -> dict[str, Any]:
    """Every regressor metric computable from ``stats``: ``{"metrics": {...}}``."""
    n = stats.n
    if n == 0:
        return {"metrics": {}}
    mse = stats.sq_sum / n
    metrics = {
        "mae": stats.abs_sum / n,
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "r2": _one_minus(stats.sq_sum, stats.y_m2),
        "explained_variance": _one_minus(stats.r_m2, stats.y_m2),
        "max_error": stats.max_abs,
        "mape": stats.ape_sum / n,
        "median_absolute_error": _median_from_histogram(stats.abs_hist, n),
        "residual_mean": stats.r_mean,
        "residual_std": float(np.sqrt(stats.r_m2 / n)),
    }
    return {"metrics": metrics}


def _one_minus(numerator: float, denominator: float) -> float:
    """scikit-learn's ``force_finite`` convention for R² and explained variance."""
    if denominator == 0:
        return 1.0 if numerator == 0 else 0.0
    return 1.0 - numerator / denominator


def _median_from_histogram(hist: np.ndarray, n: int) -> float:
    edges = log_bin_edges()
    cumulative = np.cumsum(hist)

    def value_at(rank: int) -> float:
        b = int(np.searchsorted(cumulative, rank + 1))
        if b == 0:
            return 0.0
        if b == len(hist) - 1:
            return float(edges[-2])
        return float(np.sqrt(edges[b] * edges[b + 1]))

    return 0.5 * (value_at((n - 1) // 2) + value_at(n // 2))


def regressor_curves(stats: RegressorStats) -> dict[str, Any]:
    """Residual histogram and predicted-vs-actual points (from the sample)."""
    sample = stats.sample
    if len(sample) == 0:
        return {}
    actual, predicted = sample[:, 0], sample[:, 1]
    residual = actual - predicted
    counts, edges = np.histogram(residual, bins=RESIDUAL_BINS)
    return {
        "residuals": {"edges": edges.tolist(), "counts": counts.tolist(), "sampled": len(sample)},
        "predicted_vs_actual": {"actual": actual.tolist(), "predicted": predicted.tolist()},
    }
