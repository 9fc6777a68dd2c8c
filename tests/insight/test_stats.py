"""Sufficient statistics without a cluster: what a block sends back does not grow with its
rows, and merging blocks' statistics equals computing them on all rows at once."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from scaleml.insight._stats import ClassifierStats, RegressorStats


def _classifier_stats(y: np.ndarray, proba: np.ndarray) -> ClassifierStats:
    stats = ClassifierStats(3, 2000, True)
    stats.update(y, proba.argmax(axis=1), proba)
    return stats


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet([1, 1, 1], size=rows)
    return rng.integers(0, 3, size=rows), proba


def test_what_a_block_sends_back_does_not_grow_with_its_rows() -> None:
    small = pickle.dumps(_classifier_stats(*_data(1_000, 0)))
    large = pickle.dumps(_classifier_stats(*_data(200_000, 1)))
    assert abs(len(large) - len(small)) < 64  # fixed-size arrays: counts and sums only
    rng = np.random.default_rng(2)
    sizes = []
    for rows in (1_000, 200_000):
        stats = RegressorStats()
        y = rng.normal(size=rows)
        stats.update(y, y + rng.normal(size=rows))
        sizes.append(len(pickle.dumps(stats)))
    assert abs(sizes[1] - sizes[0]) < 64  # a sample of at most 300 rows per block


def test_merging_blocks_equals_all_rows_at_once() -> None:
    y, proba = _data(9_000, 3)
    whole = _classifier_stats(y, proba)
    merged = _classifier_stats(y[:2_000], proba[:2_000])
    merged.add(_classifier_stats(y[2_000:], proba[2_000:]))
    np.testing.assert_array_equal(merged.confusion, whole.confusion)
    np.testing.assert_array_equal(merged.positives, whole.positives)
    assert merged.log_loss_sum == pytest.approx(whole.log_loss_sum, rel=1e-12)

    rng = np.random.default_rng(4)
    actual = rng.normal(loc=1e6, size=9_000)  # a large mean: naive sums would lose digits
    predicted = actual + rng.normal(size=9_000)
    whole_r, merged_r, other = RegressorStats(), RegressorStats(), RegressorStats()
    whole_r.update(actual, predicted)
    merged_r.update(actual[:3_000], predicted[:3_000])
    other.update(actual[3_000:], predicted[3_000:])
    merged_r.add(other)
    assert merged_r.n == whole_r.n
    assert merged_r.y_m2 == pytest.approx(np.sum((actual - actual.mean()) ** 2), rel=1e-9)
    assert merged_r.r_m2 == pytest.approx(whole_r.r_m2, rel=1e-9)
    np.testing.assert_array_equal(merged_r.abs_hist, whole_r.abs_hist)
