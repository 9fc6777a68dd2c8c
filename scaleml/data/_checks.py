"""Checks of a block's values as it is read: features and target must be finite numbers.

They run on the workers, where blocks are read, and raise
:class:`~scaleml.data.NonFiniteValueError` naming the file, the column, the first bad row and
how many values are bad. The common case (all finite) costs one pass over the matrix with no
temporary array (a sum, which NaN and infinity turn non-finite); only then are the values
searched for the first bad one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scaleml.data._errors import NonFiniteValueError


def check_xy(
    block: Any,
    x: np.ndarray,
    y: np.ndarray | None,
    features: list[str],
    target: str | None,
    *,
    allow_nan_features: bool = False,
) -> None:
    """Raise :class:`NonFiniteValueError` if ``x`` (read from ``block``) holds NaN or infinity
    (only infinity with ``allow_nan_features``), or ``y`` NaN, infinity or a null."""
    if x.dtype.kind in "fc" and not _sum_is_finite(x):
        bad = np.isinf(x) if allow_nan_features else ~np.isfinite(x)
        if bad.any():
            column = int(np.argmax(bad.any(axis=0)))
            _raise(block, features[column], bad[:, column], x[:, column], "feature")
    if y is not None and target is not None:
        check_target(block, y, target)


def check_target(block: Any, y: np.ndarray | pd.Series, target: str) -> None:
    """Raise :class:`NonFiniteValueError` if the target holds NaN, infinity or a null."""
    values = np.asarray(y)
    if values.dtype.kind in "fc":
        if _sum_is_finite(values):
            return
        _raise_if_any(block, target, ~np.isfinite(values), values, "target")
    elif values.dtype.kind == "O":
        _raise_if_any(block, target, pd.isna(values), values, "target")


def check_frame(block: Any, frame: pd.DataFrame, features: list[str], target: str | None) -> None:
    """The checks of a whole-frame read where missing features are allowed (boosting treats
    NaN as a missing value): no infinity in a feature, no NaN, infinity or null target."""
    for name in features:
        column = frame[name].to_numpy()
        if column.dtype.kind == "f" and not _sum_is_finite(column):
            _raise_if_any(block, name, np.isinf(column), column, "feature")
    if target is not None:
        check_target(block, frame[target], target)


def _sum_is_finite(values: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        return bool(np.isfinite(np.add.reduce(values, axis=None)))


def _raise_if_any(block: Any, name: str, bad: np.ndarray, values: np.ndarray, role: str) -> None:
    if bad.any():
        _raise(block, name, bad, values, role)


def _raise(block: Any, name: str, bad: np.ndarray, values: np.ndarray, role: str) -> None:
    row = int(np.argmax(bad))
    count = int(np.count_nonzero(bad))
    first = values[row]
    kind = "infinity" if isinstance(first, float | np.floating) and np.isinf(first) else "NaN/null"
    path, file_row, described = _where(block, row)
    at = f"row {file_row}" if file_row is not None else f"row {row} of the block"
    raise NonFiniteValueError(
        f"{described}: {role} column {name!r} has {count} missing or infinite value(s), "
        f"the first ({kind}) at {at}; {_advice(role)}",
        path=path,
        column=name,
        row=file_row,
    )


def _where(block: Any, row: int) -> tuple[str | None, int | None, str]:
    where = getattr(block, "where", None)
    if callable(where):
        return where(row)
    return None, None, "a block"


def _advice(role: str) -> str:
    if role == "target":
        return "drop those rows or fill the target"
    return "drop those rows, impute the values, or leave the column out of the features"
