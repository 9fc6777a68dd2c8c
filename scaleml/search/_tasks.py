"""Functions that run inside tasks on Dask workers during an adaptive search.

A model in a search is a chain of :class:`TrialState` futures, one per ``partial_fit`` call.
Every call works on a copy (``copy.deepcopy``), so a state future always holds the model as it
was after its call: a task re-run after a worker died starts from the same model and gives
the same result, which is what lets Dask recompute lost states from their lineage.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from distributed import get_worker
from sklearn.base import clone

from scaleml.search._scoring import check_test_set

XY = tuple[Any, Any]


@dataclass(frozen=True)
class TrialState:
    """One model of a search after some ``partial_fit`` calls, as held on a worker."""

    estimator: Any
    model_id: Hashable
    partial_fit_calls: int = 0
    partial_fit_time: float = 0.0
    score: float | None = None
    score_time: float = 0.0


def create_model(estimator: Any, model_id: Hashable, params: dict[str, Any]) -> TrialState:
    """A fresh clone of ``estimator`` with ``params``."""
    model = clone(estimator).set_params(**params)
    return TrialState(model, model_id)


def fit_block(state: TrialState, xy: XY, fit_params: dict[str, Any]) -> TrialState:
    """One ``partial_fit`` call on one block, on a copy of the model."""
    started = time.perf_counter()
    x, y = _arrays(xy)
    model = state.estimator
    if len(x):
        model = copy.deepcopy(model)
        model.partial_fit(x, y, **fit_params)
    return replace(
        state,
        estimator=model,
        partial_fit_calls=state.partial_fit_calls + 1,
        partial_fit_time=time.perf_counter() - started,
    )


def fit_and_score(
    state: TrialState,
    xy: XY,
    fit_params: dict[str, Any],
    scorer: Callable[[Any, Any, Any], float],
    test: XY,
    topic: str,
    step_id: str,
) -> TrialState:
    """The last call of a step: ``partial_fit`` on one block, score on the test set, and
    send the small report to the driver as a Dask event on ``topic`` (pushed to the client
    by the scheduler: no result to fetch). A re-run of this task after its output was lost
    sends the report again, which is how the driver learns that the model was recomputed."""
    fitted = fit_block(state, xy, fit_params)
    started = time.perf_counter()
    x_test, y_test = _arrays(test)
    score = float(scorer(fitted.estimator, x_test, y_test))
    scored = replace(fitted, score=score, score_time=time.perf_counter() - started)
    get_worker().log_event(topic, report(scored, step_id))
    return scored


def report(state: TrialState, step_id: str) -> dict[str, Any]:
    """The small part of a state the driver needs: calls, timings and score."""
    return {
        "step_id": step_id,
        "model_id": state.model_id,
        "partial_fit_calls": state.partial_fit_calls,
        "partial_fit_time": state.partial_fit_time,
        "score": state.score,
        "score_time": state.score_time,
    }


def estimator_of(state: TrialState) -> Any:
    """The fitted model of a state."""
    return state.estimator


def concat_xy(xs: Sequence[Any], ys: Sequence[Any]) -> XY:
    """Concatenate blocks of ``X`` and ``y`` (NumPy or pandas) into one ``(X, y)`` pair."""
    return _concat(xs), _concat(ys)


def concat_test_set(xs: Sequence[Any], ys: Sequence[Any]) -> XY:
    """The test set from its blocks: one ``(X, y)`` pair of NumPy arrays, checked once."""
    return _checked_test_set(concat_xy(xs, ys))


def read_blocks(blocks: Sequence[Any], features: list[str], target: str | None, dtype: Any) -> XY:
    """Read Dataset blocks on a worker and concatenate them into one ``(X, y)`` pair."""
    from scaleml.data import read_xy

    parts = [read_xy(block, features, target, dtype) for block in blocks]
    return _concat([x for x, _ in parts]), _concat([y for _, y in parts])


def read_test_set(blocks: Sequence[Any], features: list[str], target: str | None, dtype: Any) -> XY:
    """The test set from Dataset blocks, like :func:`concat_test_set`."""
    return _checked_test_set(read_blocks(blocks, features, target, dtype))


def _checked_test_set(xy: XY) -> XY:
    x, y = _arrays(xy)
    check_test_set(x)
    return x, y


def _arrays(xy: XY) -> XY:
    x, y = xy
    return _numpy(x), _numpy(y)


def _numpy(part: Any) -> Any:
    if part is None or isinstance(part, np.ndarray):
        return part
    to_numpy = getattr(part, "to_numpy", None)
    return to_numpy() if callable(to_numpy) else part


def _concat(parts: Sequence[Any]) -> Any:
    if not parts or parts[0] is None:
        return None
    if hasattr(parts[0], "iloc"):
        import pandas as pd

        return pd.concat(list(parts), ignore_index=True)
    return np.concatenate(list(parts), axis=0)
