"""Sufficient statistics of a model's predictions on some rows, and how two of them add up.

They are computed on the workers (one block at a time) and merged on the client: every metric,
curve and fairness figure of an evaluation is a function of these sums, so memory stays at one
block per worker and a few kilobytes per block on the client, whatever the dataset's size.

Scores (class probabilities) are counted in ``bins`` equal-width bins of ``[0, 1]``; absolute
residuals in log-spaced bins (``_LOG_BINS_PER_DECADE`` per decade from ``1e-9`` to ``1e9``,
below in an underflow bin, above in an overflow bin).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_BINS = 2000
_LOG_LOW = -9.0
_LOG_HIGH = 9.0
_LOG_BINS_PER_DECADE = 1000
LOG_BINS = int((_LOG_HIGH - _LOG_LOW) * _LOG_BINS_PER_DECADE)
SAMPLE_ROWS = 300
"""Rows of (actual, predicted) kept per block for the predicted-vs-actual picture."""


def log_bin_edges() -> np.ndarray:
    """Edges of the absolute-residual bins: ``[0, 1e-9, ..., 1e9, inf]`` (``LOG_BINS + 2``
    bins, the first for values below ``1e-9`` and the last for values above ``1e9``)."""
    inner = np.logspace(_LOG_LOW, _LOG_HIGH, LOG_BINS + 1)
    return np.concatenate([[0.0], inner, [np.inf]])


def score_bin(scores: np.ndarray, bins: int) -> np.ndarray:
    """The bin of each score in ``[0, 1]``: bin ``k`` holds ``(k/bins, (k+1)/bins]`` (and 0)."""
    index = np.ceil(np.asarray(scores, dtype=np.float64) * bins).astype(np.int64) - 1
    return np.clip(index, 0, bins - 1)


@dataclass
class ClassifierStats:
    """Sums over rows for a classifier with ``k`` classes (in ``classes`` order).

    ``positives[c, b]`` / ``negatives[c, b]`` count rows whose class-``c`` probability falls in
    bin ``b`` and whose label is / is not ``c``; ``score_sum[c, b]`` adds those probabilities.
    """

    k: int
    bins: int
    has_proba: bool
    n: int = 0
    confusion: np.ndarray = field(default=None)  # type: ignore[assignment]
    log_loss_sum: float = 0.0
    brier_sum: float = 0.0
    positives: np.ndarray | None = None
    negatives: np.ndarray | None = None
    score_sum: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.confusion is None:
            self.confusion = np.zeros((self.k, self.k), dtype=np.int64)
        if self.has_proba and self.positives is None:
            self.positives = np.zeros((self.k, self.bins), dtype=np.int64)
            self.negatives = np.zeros((self.k, self.bins), dtype=np.int64)
            self.score_sum = np.zeros((self.k, self.bins), dtype=np.float64)

    def update(self, y_index: np.ndarray, pred_index: np.ndarray, proba: np.ndarray | None) -> None:
        """Add rows: label and prediction as class positions, probabilities ``(rows, k)``."""
        k = self.k
        self.n += len(y_index)
        self.confusion += np.bincount(y_index * k + pred_index, minlength=k * k).reshape(k, k)
        if proba is None or not self.has_proba:
            return
        rows = np.arange(len(y_index))
        eps = np.finfo(np.float64).eps
        clipped = np.clip(proba[rows, y_index], eps, 1 - eps)
        self.log_loss_sum += float(-np.sum(np.log(clipped)))
        onehot = np.zeros_like(proba)
        onehot[rows, y_index] = 1.0
        self.brier_sum += float(np.sum((onehot - proba) ** 2))
        for c in range(k):
            scores = proba[:, c]
            index = score_bin(scores, self.bins)
            is_c = y_index == c
            self.positives[c] += np.bincount(index[is_c], minlength=self.bins)
            self.negatives[c] += np.bincount(index[~is_c], minlength=self.bins)
            self.score_sum[c] += np.bincount(index, weights=scores, minlength=self.bins)

    def add(self, other: ClassifierStats) -> ClassifierStats:
        """Merge ``other`` (the same model on other rows) into these sums; return ``self``."""
        self.n += other.n
        self.confusion += other.confusion
        self.log_loss_sum += other.log_loss_sum
        self.brier_sum += other.brier_sum
        if self.has_proba:
            self.positives += other.positives
            self.negatives += other.negatives
            self.score_sum += other.score_sum
        return self


@dataclass
class RegressorStats:
    """Sums over rows for a regressor: counts, means and squared deviations (merged with
    Chan's parallel formula, so R² keeps its precision), extremes, the absolute-residual
    histogram and a small sample of ``(actual, predicted)`` rows."""

    n: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    ape_sum: float = 0.0
    max_abs: float = 0.0
    y_mean: float = 0.0
    y_m2: float = 0.0
    r_mean: float = 0.0
    r_m2: float = 0.0
    abs_hist: np.ndarray = field(default_factory=lambda: np.zeros(LOG_BINS + 2, np.int64))
    sample: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def update(self, y: np.ndarray, pred: np.ndarray, seed: int = 0) -> None:
        """Add rows of actual ``y`` and predicted ``pred`` values."""
        y = np.asarray(y, dtype=np.float64)
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        residual = y - pred
        absolute = np.abs(residual)
        if len(y) == 0:
            return
        self.abs_sum += float(absolute.sum())
        self.sq_sum += float(np.dot(residual, residual))
        eps = np.finfo(np.float64).eps
        self.ape_sum += float(np.sum(absolute / np.maximum(np.abs(y), eps)))
        self.max_abs = max(self.max_abs, float(absolute.max()))
        self.abs_hist += np.bincount(_log_bin(absolute), minlength=LOG_BINS + 2)
        part = RegressorStats(
            n=len(y),
            y_mean=float(y.mean()),
            y_m2=float(np.sum((y - y.mean()) ** 2)),
            r_mean=float(residual.mean()),
            r_m2=float(np.sum((residual - residual.mean()) ** 2)),
        )
        self._merge_moments(part)
        rng = np.random.default_rng(seed)
        take = rng.choice(len(y), size=min(SAMPLE_ROWS, len(y)), replace=False)
        self.sample = np.concatenate([self.sample, np.column_stack([y[take], pred[take]])])

    def add(self, other: RegressorStats) -> RegressorStats:
        """Merge ``other`` into these sums; return ``self``."""
        self.abs_sum += other.abs_sum
        self.sq_sum += other.sq_sum
        self.ape_sum += other.ape_sum
        self.max_abs = max(self.max_abs, other.max_abs)
        self.abs_hist = self.abs_hist + other.abs_hist
        self.sample = np.concatenate([self.sample, other.sample])
        self._merge_moments(other)
        return self

    def _merge_moments(self, other: RegressorStats) -> None:
        n = self.n + other.n
        if n == 0:
            return
        for mean_name, m2_name in (("y_mean", "y_m2"), ("r_mean", "r_m2")):
            a_mean, b_mean = getattr(self, mean_name), getattr(other, mean_name)
            delta = b_mean - a_mean
            setattr(self, mean_name, a_mean + delta * other.n / n)
            m2 = getattr(self, m2_name) + getattr(other, m2_name)
            setattr(self, m2_name, m2 + delta * delta * self.n * other.n / n)
        self.n = n


def _log_bin(absolute: np.ndarray) -> np.ndarray:
    """The log-spaced bin of each absolute residual (0: below 1e-9; last: above 1e9)."""
    with np.errstate(divide="ignore"):
        position = (np.log10(absolute) - _LOG_LOW) * _LOG_BINS_PER_DECADE
    index = np.floor(np.nan_to_num(position, neginf=-1.0, posinf=LOG_BINS)).astype(np.int64) + 1
    return np.clip(index, 0, LOG_BINS + 1)
