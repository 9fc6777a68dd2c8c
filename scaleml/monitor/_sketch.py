"""A mergeable quantile sketch: weighted points at evenly spaced ranks, compressed on merge.

A block's sketch keeps ``k`` of its sorted values at ranks ``(j + 0.5) n / k`` (all values when
the block has at most ``k``), each weighing ``n / k`` rows. Merging two sketches sorts their
points and compresses them back to ``k`` points the same way. Each compression moves a point by
at most half a point's weight in rank, so after ``m`` levels of merging the rank of any answer
is off by at most ``(m + 1) / k`` of the rows (:func:`rank_error`): with ``k = 2048`` and a
thousand blocks merged pairwise (ten levels), 0.54 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_K = 2048


@dataclass(frozen=True)
class QuantileSketch:
    """Sorted ``values`` with ``weights`` (rows each stands for); ``levels`` of merging."""

    values: np.ndarray
    weights: np.ndarray
    levels: int = 0

    @property
    def count(self) -> float:
        """The rows summarised."""
        return float(self.weights.sum())

    def quantiles(self, qs: np.ndarray | list[float]) -> np.ndarray:
        """The values at probabilities ``qs`` (0 = the minimum, 1 = the maximum)."""
        qs = np.asarray(qs, dtype=np.float64)
        if not len(self.values):
            return np.full(qs.shape, np.nan)
        cumulative = np.cumsum(self.weights)
        targets = qs * cumulative[-1]
        index = np.searchsorted(cumulative, targets, side="left")
        return self.values[np.clip(index, 0, len(self.values) - 1)]

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """The fraction of rows at or below each of ``points``."""
        if not len(self.values):
            return np.zeros(len(points))
        cumulative = np.concatenate([[0.0], np.cumsum(self.weights)])
        index = np.searchsorted(self.values, points, side="right")
        return cumulative[index] / cumulative[-1]


def sketch(values: np.ndarray, k: int = DEFAULT_K) -> QuantileSketch:
    """The sketch of one block's non-null ``values``."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    if n <= k:
        return QuantileSketch(ordered, np.ones(n))
    ranks = ((np.arange(k) + 0.5) * n / k).astype(np.int64)
    return QuantileSketch(ordered[ranks], np.full(k, n / k))


def merge(*parts: QuantileSketch, k: int = DEFAULT_K) -> QuantileSketch:
    """One sketch of every row the ``parts`` summarise, compressed to ``k`` points."""
    parts = tuple(p for p in parts if len(p.values))
    if not parts:
        return QuantileSketch(np.empty(0), np.empty(0))
    levels = max(p.levels for p in parts)
    values = np.concatenate([p.values for p in parts])
    weights = np.concatenate([p.weights for p in parts])
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    if len(values) <= k:
        return QuantileSketch(values, weights, levels)
    cumulative = np.cumsum(weights)
    total = cumulative[-1]
    targets = (np.arange(k) + 0.5) * total / k
    index = np.clip(np.searchsorted(cumulative, targets, side="left"), 0, len(values) - 1)
    return QuantileSketch(values[index], np.full(k, total / k), levels + 1)


def rank_error(levels: int, k: int = DEFAULT_K) -> float:
    """The bound on a quantile's rank error, as a fraction of rows, after ``levels`` merges."""
    return (levels + 1) / k


def merge_levels(n_parts: int) -> int:
    """Levels of pairwise merging of ``n_parts`` sketches."""
    return max(0, math.ceil(math.log2(max(n_parts, 1))))
