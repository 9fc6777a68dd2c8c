"""Scoring a search's models on its test set, on the workers.

An adaptive search scores every model after every step on the same test set, a thousand
times or more. scikit-learn's default classifier score (accuracy) takes 10.5 ms on the
tutorial's 100,000-row test set, of which predicting and comparing are 1.7 ms: the rest checks
the same test set for NaN and works out its label type (hashing both label arrays) again on
every call. :class:`AccuracyOnCheckedTestSet` skips those repeated checks; the search checks
its test set once, where it is placed (:func:`check_test_set`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.base import ClassifierMixin, is_classifier
from sklearn.utils import assert_all_finite

Scorer = Callable[[Any, Any, Any], float]


class AccuracyOnCheckedTestSet:
    """Accuracy, computed as ``accuracy_score`` computes it (``np.average(y_true == y_pred)``),
    for a test set already checked by :func:`check_test_set`.

    Falls back to the scikit-learn ``scorer`` it stands for whenever the labels are not one
    1-D array of the prediction's kind (multilabel targets, say), so every score equals the
    scikit-learn one.
    """

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        numeric = isinstance(X, np.ndarray) and X.dtype.kind in "biufc"
        if numeric and isinstance(y, np.ndarray) and y.ndim == 1:
            with config_context(assume_finite=True):
                predicted = estimator.predict(X)
            if (
                isinstance(predicted, np.ndarray)
                and predicted.shape == y.shape
                and predicted.dtype.kind == y.dtype.kind
            ):
                return float(np.average(y == predicted))
        return float(self.scorer(estimator, X, y))


def task_scorer(estimator: Any, scoring: Any, scorer: Scorer) -> Scorer:
    """The scorer the search's tasks use: :class:`AccuracyOnCheckedTestSet` where ``scorer``
    is accuracy (``scoring="accuracy"``, or no ``scoring`` for a classifier that keeps
    scikit-learn's ``score``), otherwise ``scorer`` itself."""
    default_score = scoring is None and (
        is_classifier(estimator) and type(estimator).score is ClassifierMixin.score
    )
    if default_score or scoring == "accuracy":
        return AccuracyOnCheckedTestSet(scorer)
    return scorer


def check_test_set(x: Any) -> None:
    """Raise ``ValueError`` if a floating-point test set holds NaN or infinity (what each
    scikit-learn score would otherwise check again on every call)."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "fc":
        assert_all_finite(x, input_name="the search's test set X")
