"""Scores on the workers: the search's accuracy equals scikit-learn's, its test set is checked
once, and the workers' allocator is tuned only while a search runs."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import pytest
from distributed import Client
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.metrics import check_scoring
from sklearn.neighbors import KNeighborsClassifier

from scaleml import _malloc
from scaleml.search import IncrementalSearchCV, observe
from scaleml.search._scoring import AccuracyOnCheckedTestSet, check_test_set, task_scorer
from tests.search.conftest import PARAMS


class _Counting:
    """A scorer that counts its calls (to see when the fast path falls back)."""

    def __init__(self, scorer: Any) -> None:
        self.scorer, self.calls = scorer, 0

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        self.calls += 1
        return self.scorer(estimator, X, y)


def _labelled(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3_000, 6))
    codes = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=1.0, size=3_000) > 0).astype(int)
    codes += (X[:, 2] > 1).astype(int) * (len(labels) - 2)
    return X, labels[codes]


@pytest.mark.parametrize(
    "labels",
    [np.array([0, 1]), np.array([3, 7, 9]), np.array(["no", "yes"]), np.array([False, True])],
    ids=["binary", "multiclass", "strings", "booleans"],
)
def test_accuracy_equals_scikit_learns_score(labels: np.ndarray) -> None:
    X, y = _labelled(labels, seed=len(labels))
    X_test, y_test = _labelled(labels, seed=99)
    for alpha in (1e-4, 1e-2, 1.0):
        model = SGDClassifier(alpha=alpha, random_state=0).fit(X[:, :2], y)  # an imperfect fit
        reference = _Counting(check_scoring(model))
        score = AccuracyOnCheckedTestSet(reference)(model, X_test[:, :2], y_test)
        assert reference.calls == 0  # computed without scikit-learn's scorer
        assert score == reference(model, X_test[:, :2], y_test)
        assert 0.3 < score < 1.0


def test_multilabel_targets_fall_back_to_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0]).astype(int)
    model = KNeighborsClassifier(n_neighbors=15).fit(X[:400], Y[:400])
    reference = _Counting(check_scoring(model))
    score = AccuracyOnCheckedTestSet(reference)(model, X[400:], Y[400:])
    assert reference.calls == 1
    assert score == reference(model, X[400:], Y[400:])
    assert 0.3 < score < 1.0


class _OwnScore(SGDClassifier):
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        return 0.5


@pytest.mark.parametrize(
    ("estimator", "scoring", "fast"),
    [
        (SGDClassifier(), None, True),
        (LogisticRegression(), "accuracy", True),
        (SGDClassifier(), "balanced_accuracy", False),
        (SGDRegressor(), None, False),
        (_OwnScore(), None, False),
    ],
)
def test_only_accuracy_takes_the_checked_test_set_path(
    estimator: Any, scoring: Any, fast: bool
) -> None:
    scorer = check_scoring(estimator, scoring=scoring)
    chosen = task_scorer(estimator, scoring, scorer)
    assert isinstance(chosen, AccuracyOnCheckedTestSet) is fast
    assert chosen is scorer or chosen.scorer is scorer


def test_a_test_set_with_nan_is_refused() -> None:
    check_test_set(np.arange(6).reshape(3, 2))  # integers are finite
    with pytest.raises(ValueError, match="test set X contains NaN"):
        check_test_set(np.array([[0.0, np.nan], [1.0, 2.0]]))


def test_a_search_whose_test_set_holds_nan_fails_before_training(
    client: Client, small_xy: tuple
) -> None:
    X, y = small_xy
    # NaN in every 50th row: the random test set (2,000 of 16,000 rows) cannot miss them all.
    X = da.where(da.arange(len(X))[:, None] % 50 == 7, np.nan, X)
    search = IncrementalSearchCV(
        SGDClassifier(), PARAMS, n_initial_parameters=2, max_iter=3, random_state=0
    )
    records: list[dict[str, Any]] = []
    observe(search, on_record=records.append)
    with pytest.raises(ValueError, match="test set X contains NaN"):
        search.fit(X, y, classes=[0, 1])
    assert records == []  # no model was trained or scored


def _holders() -> int:
    return _malloc._holders


def test_workers_keep_freed_memory_only_while_a_search_runs(
    client: Client, small_xy: tuple
) -> None:
    """The session's cluster has Dask's ``MALLOC_TRIM_THRESHOLD_``: the thresholds are raised
    on every worker during the fit and put back after it."""
    X, y = small_xy
    search = IncrementalSearchCV(
        SGDClassifier(), PARAMS, n_initial_parameters=2, max_iter=2, random_state=0
    )
    during: list[dict[str, int]] = []
    observe(search, on_record=lambda record: during.append(client.run(_holders)))
    search.fit(X, y, classes=[0, 1])
    assert during and all(set(seen.values()) == {1} for seen in during)
    assert set(client.run(_holders).values()) == {0}
    assert all(client.run(lambda: _malloc._restore == {}).values())
