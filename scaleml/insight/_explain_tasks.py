"""The worker side of ``explain``: one task per block returns sufficient statistics of the
block's SHAP values (sums of |value| and of value per output and feature, rows, the largest
additivity error) and the values of a few sampled rows; and one task per training block
returns a background summary (sums for the mean, and a few rows).

Only small results leave a worker: a block's per-row values are dropped once summed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scaleml.data._checks import check_frame, check_xy


def read_block(
    block: Any, features: list[str], target: str | None, *, allow_nan: bool
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The block's features (a DataFrame, float64 unless the model takes NaN) and target,
    checked: NaN or infinity is refused, naming the file, column and row (boosting models
    take NaN as missing and only infinity is refused)."""
    columns = list(dict.fromkeys([*features, *([target] if target else [])]))
    frame = block.read(columns)
    if allow_nan:
        check_frame(block, frame, features, target)
        x = frame[features]
    else:
        x = frame[features].astype(np.float64)
        y_check = frame[target].to_numpy() if target else None
        check_xy(block, x.to_numpy(), y_check, features, target)
    y = frame[target].to_numpy() if target else None
    return x.reset_index(drop=True), y


def _sample_positions(n: int, quota: int, seed: int) -> np.ndarray:
    if quota >= n:
        return np.arange(n)
    if quota <= 0:
        return np.arange(0)
    return np.sort(np.random.default_rng(seed).choice(n, size=quota, replace=False))


def explain_block(
    explainer: Any,
    block: Any,
    features: list[str],
    target: str | None,
    *,
    quota: int,
    seed: int,
    sample_only: bool,
) -> dict[str, Any]:
    """Explain one block; return its statistics and the values of ``quota`` sampled rows.

    With ``sample_only`` (model-agnostic explainers, whose cost grows with the rows) only the
    sampled rows are explained and the statistics are theirs.
    """
    x, y = read_block(block, features, target, allow_nan=not explainer.needs_nan_free)
    positions = _sample_positions(len(x), quota, seed)
    if sample_only:
        x, y = x.iloc[positions].reset_index(drop=True), None if y is None else y[positions]
        positions = np.arange(len(x))
    result: dict[str, Any] = {"n": len(x)}
    if len(x) == 0:
        return result
    values, base, raw = explainer.explain_with_output(x)
    error = np.abs(base[None, :] + values.sum(axis=2) - raw)
    result.update(
        sum_abs=np.abs(values).sum(axis=0),
        sum=values.sum(axis=0),
        base=base,
        max_error=float(error.max()),
        max_output=float(np.abs(raw).max()),
        values=values[positions],
        data=x.iloc[positions].reset_index(drop=True),
        output=raw[positions],
        target=None if y is None else y[positions],
        prediction=_predictions(explainer.model, x.iloc[positions]),
    )
    return result


def _predictions(model: Any, x: pd.DataFrame) -> np.ndarray | None:
    if not hasattr(model, "predict"):
        return None
    if len(x) == 0:
        return np.empty(0)
    try:
        return np.asarray(model.predict(x))
    except Exception:  # a bare Booster, say: the sample simply has no predictions
        return None


def background_block(
    block: Any, features: list[str], *, quota: int, seed: int, allow_nan: bool
) -> dict[str, Any]:
    """Sums for the background mean over one training block, and ``quota`` sampled rows."""
    x, _ = read_block(block, features, None, allow_nan=allow_nan)
    values = x.to_numpy(dtype=np.float64)
    positions = _sample_positions(len(x), quota, seed)
    return {
        "n": len(x),
        "sum": np.nansum(values, axis=0),
        "count": np.sum(~np.isnan(values), axis=0),
        "rows": x.iloc[positions].reset_index(drop=True),
    }
