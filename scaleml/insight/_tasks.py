"""The worker side of an evaluation: read one block once, predict it with every model, and
return each model's sufficient statistics (overall and by sensitive group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaleml.data._checks import check_frame, check_xy
from scaleml.insight._errors import InsightError
from scaleml.insight._stats import ClassifierStats, RegressorStats

ALL = "__all__"
"""The key of the statistics over every row (group keys are tuples of sensitive values)."""


@dataclass(frozen=True)
class ModelPlan:
    """What a task needs to know of one model: its kind, classes and feature handling."""

    kind: str  # "classifier" or "regressor"
    classes: tuple[Any, ...] = ()
    has_proba: bool = False
    bins: int = 0
    frame_input: bool = False  # the model was fitted with feature names: give it a DataFrame
    missing_features: bool = False  # XGBoost / LightGBM take NaN as a missing value


def evaluate_block(
    models: list[Any],
    plans: list[ModelPlan],
    block: Any,
    features: list[str],
    target: str,
    sensitive: list[str],
    seed: int,
) -> list[dict[Any, ClassifierStats | RegressorStats]]:
    """Read ``block`` once and return, for each model, ``{ALL: stats, (group...): stats}``."""
    frame = block.read(list(dict.fromkeys([*features, target, *sensitive])))
    numeric = frame[features].to_numpy(dtype=np.float64)
    y = frame[target].to_numpy()
    groups = _group_rows(frame, sensitive)
    results = []
    for model, plan in zip(models, plans, strict=True):
        if plan.missing_features:
            check_frame(block, frame, features, target)
        else:
            check_xy(block, numeric, y, features, target)
        x = frame[features] if plan.frame_input else numeric
        results.append(_model_stats(model, plan, x, y, groups, seed))
    return results


def _model_stats(
    model: Any, plan: ModelPlan, x: Any, y: np.ndarray, groups: dict[Any, np.ndarray], seed: int
) -> dict[Any, ClassifierStats | RegressorStats]:
    pred = np.asarray(model.predict(x))
    out: dict[Any, ClassifierStats | RegressorStats] = {}
    if plan.kind == "regressor":
        for key, rows in [(ALL, None), *groups.items()]:
            stats = RegressorStats()
            if rows is None:
                stats.update(y, pred, seed)
            else:
                stats.update(y[rows], pred.reshape(-1)[rows], seed)
            out[key] = stats
        return out
    classes = np.asarray(plan.classes)
    y_index = _positions(classes, y, "label")
    pred_index = _positions(classes, pred.reshape(-1), "prediction")
    proba = np.asarray(model.predict_proba(x), dtype=np.float64) if plan.has_proba else None
    for key, rows in [(ALL, None), *groups.items()]:
        stats = ClassifierStats(len(classes), plan.bins, plan.has_proba)
        if rows is None:
            stats.update(y_index, pred_index, proba)
        else:
            stats.update(y_index[rows], pred_index[rows], None if proba is None else proba[rows])
        out[key] = stats
    return out


def _positions(classes: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
    """Each value's position in the sorted ``classes``; a value outside them is an error."""
    index = np.clip(np.searchsorted(classes, values), 0, len(classes) - 1)
    unknown = classes[index] != values
    if np.any(unknown):
        value = values[np.argmax(unknown)]
        raise InsightError(
            f"the data has a {what} {value!r} that is not one of the model's classes "
            f"{classes.tolist()[:20]}"
        )
    return index


def _group_rows(frame: pd.DataFrame, sensitive: list[str]) -> dict[Any, np.ndarray]:
    """Row positions of each combination of sensitive values (missing values are a group)."""
    if not sensitive:
        return {}
    keys = frame[sensitive].astype(object).where(frame[sensitive].notna(), None)
    groups: dict[Any, np.ndarray] = {}
    for key, rows in keys.groupby(sensitive, dropna=False, sort=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        groups[tuple(_plain(v) for v in key)] = np.asarray(rows)
    return groups


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value
