"""Scoring fitted models on the same validation data, for the promotion gate.

Metrics are additive (the training stage's per-block statistics): every validation block is
read and scored where it is read (on the workers when a Dask client is given), and only small
sums come back, so the comparison costs one pass over the validation blocks.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException

from scaleml.data import Dataset
from scaleml.train._scoring import (
    DEFAULT_SCORING,
    HIGHER_IS_BETTER,
    add_statistics,
    block_statistics,
    estimator_kind,
    metrics_from_statistics,
)

_NATIVE_FLAVORS = ("sklearn", "xgboost", "lightgbm")


def load_fitted(uri: str) -> Any | None:
    """The model at ``uri`` as its library's own object (scikit-learn, XGBoost or LightGBM
    flavor), or None when it has none of those flavors."""
    try:
        flavors = mlflow.models.get_model_info(uri).flavors
    except MlflowException:
        return None
    for flavor in _NATIVE_FLAVORS:
        if flavor in flavors:
            module = getattr(mlflow, flavor)
            return module.load_model(uri)
    return None


def validation_scores(
    models: list[Any], data: Any, y: Any, scoring: str | None, client: Any
) -> tuple[str, list[float]]:
    """``(metric, [score of each model])`` on the same data: a ``Dataset``'s validation blocks,
    or ``(data, y)`` (dask arrays chunk by chunk, or in-memory arrays/DataFrames)."""
    kind = estimator_kind(models[0])
    metric = scoring if scoring in HIGHER_IS_BETTER else DEFAULT_SCORING[kind]
    if isinstance(data, Dataset):
        blocks = [data.blocks[i] for i in data.validation_blocks] or list(data.blocks)
        args = [(_read_and_score, b, list(data.features), data.target) for b in blocks]
    else:
        args = [(_score, x, t) for x, t in _chunks(data, y)]
    scores = []
    for model in models:
        if client is not None:
            futures = [client.submit(f, model, *rest, pure=False) for f, *rest in args]
            parts = client.gather(futures)
        else:
            parts = [f(model, *rest) for f, *rest in args]
        metrics = metrics_from_statistics(add_statistics(parts))
        scores.append(float(metrics.get(metric, np.nan)))
    return metric, scores


def _read_and_score(model: Any, block: Any, features: list[str], target: str) -> dict:
    frame = block.read([*features, target])
    return block_statistics(model, frame[features], frame[target].to_numpy())


def _score(model: Any, x: Any, y: Any) -> dict:
    return block_statistics(model, x, np.asarray(y))


def _chunks(X: Any, y: Any) -> list[tuple[Any, Any]]:
    if hasattr(X, "to_delayed") and hasattr(X, "chunks"):  # a dask array: one pair per chunk
        import dask

        X = X.rechunk({1: -1}) if X.ndim == 2 else X
        y = y.rechunk(X.chunks[0])
        pairs = zip(X.to_delayed().ravel(), y.to_delayed().ravel(), strict=True)
        return list(dask.compute(*[tuple(p) for p in pairs]))
    if hasattr(X, "compute"):
        X, y = X.compute(), y.compute()
    return [(X, y)]
