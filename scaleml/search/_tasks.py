"""Functions that run inside tasks on Dask workers during an adaptive search.

The models of a search travel in *batches*: a task takes the models of one group that live on
one worker and are due the same calls, trains each on the same block, and returns them as a
``{model_id: TrialState}`` dict (one task per block for all of them, not one per model: the
per-task cost of the scheduler, the worker and the client is paid once for the batch). Every
call works on a copy (``copy.deepcopy``), so a batch future always holds its models as they
were after its call: a task re-run after a worker died starts from the same models and gives
the same result, which is what lets Dask recompute lost states from their lineage.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from dask.sizeof import sizeof
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
    finished_at: float = 0.0
    """When it was scored (``time.time()`` on its worker)."""
    earlier: tuple[dict[str, Any], ...] = ()
    """The model's reports after the earlier rounds of the task that made this state."""


@sizeof.register(TrialState)
def _sizeof_state(state: TrialState) -> int:
    """The bytes of a model state as Dask counts them (what it moves, what the scheduler
    weighs): its estimator's arrays and nested estimators, not just the Python object."""
    return 256 + _estimator_bytes(state.estimator, depth=3)


def _estimator_bytes(value: Any, depth: int) -> int:
    if depth and hasattr(value, "get_params") and hasattr(value, "__dict__"):
        return sum(_estimator_bytes(v, depth - 1) for v in vars(value).values())
    if depth and isinstance(value, list | tuple):
        return 64 + sum(_estimator_bytes(v, depth - 1) for v in value)
    return int(sizeof(value))


Models = dict[Hashable, TrialState]
"""A batch of models: ``{model_id: state}``."""


def create_models(estimator: Any, params: Mapping[Hashable, dict[str, Any]]) -> Models:
    """A fresh clone of ``estimator`` per model, with that model's parameters."""
    return {k: TrialState(clone(estimator).set_params(**p), k) for k, p in params.items()}


def fit_models(
    sources: Sequence[Models], model_ids: Sequence[Hashable], xy: XY, fit_params: dict[str, Any]
) -> Models:
    """One ``partial_fit`` call of each model named, on one block, each on a copy.

    ``sources`` are the batches holding the models' last states."""
    x, y = _arrays(xy)
    states = _pick(sources, model_ids)
    return {k: _fit(state, x, y, fit_params) for k, state in states.items()}


def fit_rounds(
    sources: Sequence[Models],
    model_ids: Sequence[Hashable],
    xys: Sequence[XY],
    fit_params: dict[str, Any],
    scorer: Callable[[Any, Any, Any], float],
    test: XY,
    topic: str,
    batch_id: str,
    calls: int = 1,
    done: int = 0,
    last: bool = True,
) -> Models:
    """A batch's step, or the part of it on one worker: one call per block of ``xys``, and
    after every ``calls`` calls of the step (a round) a score of every model on the test set.
    ``done`` is the step's calls made by the tasks before this one (whose rounds' reports the
    states carry in ``earlier``). The task that ends the step (``last``) sends the small
    report of every round to the driver as one Dask event on ``topic`` (pushed to the client
    by the scheduler: no result to fetch). A re-run of it after its output was lost sends the
    report again, which is how the driver learns that the models were recomputed."""
    models = _pick(sources, model_ids)
    earlier = {k: list(state.earlier) if done else [] for k, state in models.items()}
    x_test = y_test = None
    for i, xy in enumerate(xys):
        x, y = _arrays(xy)
        models = {k: _fit(state, x, y, fit_params) for k, state in models.items()}
        if (done + i + 1) % calls:
            continue
        if x_test is None:
            x_test, y_test = _arrays(test)
        scored = {}
        for model_id, state in models.items():
            started = time.perf_counter()
            score = float(scorer(state.estimator, x_test, y_test))
            scored[model_id] = replace(
                state,
                score=score,
                score_time=time.perf_counter() - started,
                finished_at=time.time(),
                earlier=(),
            )
            earlier[model_id].append(_model_report(scored[model_id]))
        models = scored
    if not last:
        return {k: replace(state, earlier=tuple(earlier[k])) for k, state in models.items()}
    models = {k: replace(state, earlier=tuple(earlier[k][:-1])) for k, state in models.items()}
    get_worker().log_event(topic, report(models, batch_id))
    return models


def report(models: Models, batch_id: str) -> dict[str, Any]:
    """The small part of a batch the driver needs: each model's calls, timings and score,
    after its last round and (``earlier``) after the rounds before it in the same task."""
    return {
        "batch_id": batch_id,
        "models": [
            {**_model_report(state), "earlier": list(state.earlier)} for state in models.values()
        ],
    }


def _model_report(state: TrialState) -> dict[str, Any]:
    return {
        "model_id": state.model_id,
        "partial_fit_calls": state.partial_fit_calls,
        "partial_fit_time": state.partial_fit_time,
        "score": state.score,
        "score_time": state.score_time,
        "finished_at": state.finished_at,
    }


def estimator_of(models: Models, model_id: Hashable) -> Any:
    """The fitted model ``model_id`` of a batch."""
    return models[model_id].estimator


def hold(xy: XY) -> None:
    """Nothing: a task that depends on a training block makes its worker fetch a copy of it
    ahead of the step that will train on it."""


def _pick(sources: Sequence[Models], model_ids: Sequence[Hashable]) -> Models:
    merged: Models = {}
    for models in sources:
        merged.update(models)
    return {k: merged[k] for k in model_ids}


def _fit(state: TrialState, x: Any, y: Any, fit_params: dict[str, Any]) -> TrialState:
    started = time.perf_counter()
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
