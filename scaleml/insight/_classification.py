"""Classifier metrics and curves from merged :class:`ClassifierStats`.

Exact (equal to scikit-learn's on the same rows to 1e-9): accuracy, balanced accuracy,
precision / recall / F1 / Jaccard (per class, macro, weighted; the positive class for binary
models), MCC, Cohen's kappa, hamming loss, zero-one loss, log loss, Brier score (scikit-learn's
scaling: halved for two classes), the confusion matrix.

From the score histograms (``bins`` equal-width bins of each class probability):

- ROC AUC (one-vs-rest macro average for multiclass): ties within a bin count one half, so
  ``|AUC - exact| <= sum_b pos_b * neg_b / (2 * P * N)``; the bound is computed for every
  evaluation (``roc_auc_error_bound``) and is typically below 1e-3 with 2000 bins.
- Average precision: each bin's precision lies between the precisions reachable inside it, so
  ``|AP - exact| <= sum_b pos_b / P * (TP_b / (TP_b + FP_prev) - (TP_prev + 1) /
  (TP_prev + 1 + FP_b))`` (cumulative counts from the top score down), reported as
  ``average_precision_error_bound``.
- KS statistic (binary): the largest gap between the classes' score distributions at a bin
  edge, ``0 <= exact - KS <= max_b max(pos_b / P, neg_b / N)`` (``ks_error_bound``).
- Curves (ROC, precision-recall, lift, gain, metrics by threshold) are exact at bin edges;
  calibration bins (10 of ``[0, 1]``) are unions of score bins, so the curve equals
  ``sklearn.calibration.calibration_curve(n_bins=10)`` except for scores exactly on an edge.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaleml.insight._stats import ClassifierStats

EXACT_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "jaccard_macro",
    "jaccard_weighted",
    "mcc",
    "cohen_kappa",
    "hamming_loss",
    "zero_one_loss",
)
BINARY_METRICS = ("precision", "recall", "f1", "jaccard", "ks_statistic")
PROBA_METRICS = ("log_loss", "brier_score", "roc_auc", "average_precision")
CLASSIFIER_METRICS = (*EXACT_METRICS, *BINARY_METRICS, *PROBA_METRICS)
CLASSIFIER_CURVES = ("confusion_matrix", "roc", "precision_recall", "calibration", "lift_gain")
CALIBRATION_BINS = 10
THRESHOLDS = 100


def _ratio(top: np.ndarray | float, bottom: np.ndarray | float) -> Any:
    """``top / bottom`` with 0 where ``bottom`` is 0 (scikit-learn's ``zero_division``)."""
    top, bottom = np.asarray(top, dtype=np.float64), np.asarray(bottom, dtype=np.float64)
    out = np.zeros(np.broadcast(top, bottom).shape)
    np.divide(top, bottom, out=out, where=bottom != 0)
    return out if out.ndim else float(out)


def classifier_metrics(stats: ClassifierStats, classes: list[Any]) -> dict[str, Any]:
    """Every metric computable from ``stats``: ``{"metrics": {...}, "per_class": {...}}``."""
    c = stats.confusion.astype(np.float64)
    n = c.sum()
    tp, support, predicted = np.diag(c), c.sum(axis=1), c.sum(axis=0)
    present = (support + predicted) > 0  # scikit-learn's labels: seen in y_true or y_pred
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    jaccard = _ratio(tp, support + predicted - tp)
    weights = support[present] / support[present].sum() if support.sum() else None
    accuracy = float(np.trace(c) / n) if n else 0.0
    m: dict[str, float] = {
        "accuracy": accuracy,
        "balanced_accuracy": float(np.mean(recall[support > 0])) if n else 0.0,
        "hamming_loss": 1.0 - accuracy,
        "zero_one_loss": 1.0 - accuracy,
        "mcc": _mcc(c),
        "cohen_kappa": _kappa(c),
    }
    for name, values in (
        ("precision", precision),
        ("recall", recall),
        ("f1", f1),
        ("jaccard", jaccard),
    ):
        m[f"{name}_macro"] = float(np.mean(values[present]))
        m[f"{name}_weighted"] = (
            float(np.dot(values[present], weights)) if weights is not None else 0.0
        )
        if stats.k == 2:
            m[name] = float(values[1])
    if stats.has_proba and n:
        m["log_loss"] = stats.log_loss_sum / n
        m["brier_score"] = stats.brier_sum / n * (0.5 if stats.k == 2 else 1.0)
        classes_scored = [i for i in range(stats.k) if stats.positives[i].sum() > 0]
        if stats.k == 2:
            classes_scored = [1]
        aucs = [_auc(stats.positives[i], stats.negatives[i]) for i in classes_scored]
        aps = [_average_precision(stats.positives[i], stats.negatives[i]) for i in classes_scored]
        if aucs and all(a is not None for a in aucs):
            m["roc_auc"] = float(np.mean([a[0] for a in aucs]))
            m["roc_auc_error_bound"] = float(np.mean([a[1] for a in aucs]))
        if aps:
            m["average_precision"] = float(np.mean([a[0] for a in aps]))
            m["average_precision_error_bound"] = float(np.mean([a[1] for a in aps]))
        if stats.k == 2 and aucs[0] is not None:
            m["ks_statistic"], m["ks_error_bound"] = _ks(stats.positives[1], stats.negatives[1])
    per_class = {
        str(_plain(label)): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "jaccard": float(jaccard[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(classes)
    }
    return {"metrics": m, "per_class": per_class}


def _mcc(c: np.ndarray) -> float:
    t_sum, p_sum, n = c.sum(axis=1), c.sum(axis=0), c.sum()
    cov_ytyp = np.trace(c) * n - np.dot(t_sum, p_sum)
    cov_ypyp = n**2 - np.dot(p_sum, p_sum)
    cov_ytyt = n**2 - np.dot(t_sum, t_sum)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def _kappa(c: np.ndarray) -> float:
    sum0, sum1 = c.sum(axis=0), c.sum(axis=1)
    if not sum0.sum():
        return 0.0
    expected = np.outer(sum0, sum1) / np.sum(sum0)
    weights = np.ones_like(c) - np.eye(len(c))
    denominator = np.sum(weights * expected)
    return float(1 - np.sum(weights * c) / denominator) if denominator else 0.0


def _auc(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float] | None:
    """(AUC, error bound) from ascending-score histograms; None with one class only."""
    p, n = pos.sum(), neg.sum()
    if p == 0 or n == 0:
        return None
    below = np.cumsum(neg) - neg
    auc = float(np.sum(pos * (below + 0.5 * neg)) / (p * n))
    return auc, float(np.sum(pos.astype(float) * neg) / (2.0 * p * n))


def _descending(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative (TP, FP) from the top bin down, at non-empty bins; and those bins."""
    order = np.arange(len(pos))[::-1]
    keep = order[(pos[order] + neg[order]) > 0]
    tp = np.cumsum(pos[::-1])[::-1][keep].astype(np.float64)
    fp = np.cumsum(neg[::-1])[::-1][keep].astype(np.float64)
    return tp, fp, keep


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    p = float(pos.sum())
    if p == 0:
        return 0.0, 0.0
    tp, fp, keep = _descending(pos, neg)
    recall = tp / p
    precision = tp / (tp + fp)
    ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    tp_prev = np.concatenate([[0.0], tp[:-1]])
    fp_prev = np.concatenate([[0.0], fp[:-1]])
    upper = _ratio(tp, tp + fp_prev)
    lower = (tp_prev + 1) / (tp_prev + 1 + fp)
    bound = float(np.sum(pos[keep] / p * np.maximum(upper - lower, 0.0)))
    return ap, bound


def _ks(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    p, n = pos.sum(), neg.sum()
    gap = np.abs(np.cumsum(pos) / p - np.cumsum(neg) / n)
    bound = float(np.max(np.maximum(pos / p, neg / n)))
    return float(np.max(np.concatenate([[0.0], gap]))), bound


def classifier_curves(stats: ClassifierStats, classes: list[Any]) -> dict[str, Any]:
    """Curves for the report and ``curves.json``: confusion matrix (counts, normalised by true
    label), and with probabilities ROC, precision-recall, calibration, lift and gain per class
    (the positive class only for binary models) and metrics by threshold (binary)."""
    c = stats.confusion
    labels = [str(_plain(label)) for label in classes]
    curves: dict[str, Any] = {
        "labels": labels,
        "confusion_matrix": c.tolist(),
        "confusion_matrix_normalized": _ratio(c, c.sum(axis=1, keepdims=True)).tolist(),
    }
    if not stats.has_proba:
        return curves
    scored = [1] if stats.k == 2 else range(stats.k)
    for name in ("roc", "precision_recall", "calibration", "lift_gain"):
        curves[name] = {}
    bins = stats.bins
    for i in scored:
        pos, neg = stats.positives[i], stats.negatives[i]
        if pos.sum() == 0 or neg.sum() == 0:
            continue
        tp, fp, keep = _descending(pos, neg)
        p, n = float(pos.sum()), float(neg.sum())
        thresholds = (keep / bins).tolist()
        curves["roc"][labels[i]] = {
            "fpr": [0.0, *(fp / n).tolist()],
            "tpr": [0.0, *(tp / p).tolist()],
            "threshold": [1.0, *thresholds],
        }
        curves["precision_recall"][labels[i]] = {
            "recall": [0.0, *(tp / p).tolist()],
            "precision": [1.0, *(tp / (tp + fp)).tolist()],
            "threshold": [1.0, *thresholds],
        }
        population = (tp + fp) / (p + n)
        curves["lift_gain"][labels[i]] = {
            "population": [0.0, *population.tolist()],
            "gain": [0.0, *(tp / p).tolist()],
            "lift": [float(tp[0] / p / population[0]), *(tp / p / population).tolist()],
        }
        curves["calibration"][labels[i]] = _calibration(pos, neg, stats.score_sum[i], bins)
    if stats.k == 2:
        curves["thresholds"] = _by_threshold(stats.positives[1], stats.negatives[1], bins)
    return curves


def _calibration(pos: np.ndarray, neg: np.ndarray, score_sum: np.ndarray, bins: int) -> dict:
    group = max(bins // CALIBRATION_BINS, 1)
    count = (pos + neg).reshape(-1, group).sum(axis=1)
    positives = pos.reshape(-1, group).sum(axis=1)
    scores = score_sum.reshape(-1, group).sum(axis=1)
    nonempty = count > 0
    return {
        "prob_pred": (scores[nonempty] / count[nonempty]).tolist(),
        "prob_true": (positives[nonempty] / count[nonempty]).tolist(),
        "count": count[nonempty].tolist(),
    }


def _by_threshold(pos: np.ndarray, neg: np.ndarray, bins: int) -> dict[str, list[float]]:
    """Precision, recall, F1, accuracy and the share predicted positive when rows scoring
    above each of ``THRESHOLDS`` evenly spaced thresholds are called positive."""
    step = max(bins // THRESHOLDS, 1)
    tp_all = np.cumsum(pos[::-1])[::-1].astype(np.float64)  # rows in bins >= b
    fp_all = np.cumsum(neg[::-1])[::-1].astype(np.float64)
    starts = np.arange(0, bins, step)
    tp, fp = tp_all[starts], fp_all[starts]
    p, n = float(pos.sum()), float(neg.sum())
    precision = _ratio(tp, tp + fp)
    recall = tp / p if p else np.zeros_like(tp)
    return {
        "threshold": (starts / bins).tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": _ratio(2 * precision * recall, precision + recall).tolist(),
        "accuracy": ((tp + (n - fp)) / (p + n)).tolist(),
        "predicted_positive_rate": ((tp + fp) / (p + n)).tolist(),
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
