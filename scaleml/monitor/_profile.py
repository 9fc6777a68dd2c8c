"""Column profiles: what one block's column looks like, in parts that merge.

A profile holds a column's row and null counts, minimum, maximum, sum and sum of squares,
a :mod:`quantile sketch <scaleml.monitor._sketch>` of its numbers, and the counts of its
distinct values while they are few (at most ``MAX_CATEGORIES``; beyond, the counts are
dropped and the column is numeric). Profiles of blocks merge pairwise, so the workers reduce
them and only the final profile of each column reaches the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scaleml.monitor import _sketch

MAX_CATEGORIES = 50


@dataclass
class Profile:
    """One column's mergeable summary."""

    dtype: str
    rows: int = 0
    nulls: int = 0
    minimum: float | None = None
    maximum: float | None = None
    total: float = 0.0
    squares: float = 0.0
    sketch: _sketch.QuantileSketch | None = None
    counts: dict[Any, int] | None = field(default_factory=dict)
    """Counts of each distinct value; None once there were more than ``MAX_CATEGORIES``."""

    @property
    def numeric(self) -> bool:
        """Whether the column holds numbers (booleans are categories)."""
        return self.sketch is not None


def profile_values(values: Any, dtype: str | None = None, k: int = _sketch.DEFAULT_K) -> Profile:
    """The profile of one block's column (a pandas Series, or array-like)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = dtype or str(series.dtype)
    present = series.dropna()
    profile = Profile(dtype, rows=len(series), nulls=len(series) - len(present))
    numeric = _is_number(series.dtype)
    if numeric:
        array = present.to_numpy(dtype=np.float64)
        profile.sketch = _sketch.sketch(array, k)
        if len(array):
            profile.minimum, profile.maximum = float(array.min()), float(array.max())
            profile.total = float(array.sum())
            profile.squares = float(np.dot(array, array))
    if not numeric or _is_integer(series.dtype):
        uniques, counts = np.unique(present.to_numpy(), return_counts=True)
        if len(uniques) <= MAX_CATEGORIES:
            profile.counts = {_plain(u): int(c) for u, c in zip(uniques, counts, strict=True)}
        else:
            profile.counts = None
    else:
        profile.counts = None
    return profile


def merge_profiles(*parts: Profile, k: int = _sketch.DEFAULT_K) -> Profile:
    """One profile of every row the ``parts`` summarise."""
    first = parts[0]
    merged = Profile(first.dtype)
    merged.rows = sum(p.rows for p in parts)
    merged.nulls = sum(p.nulls for p in parts)
    minimums = [p.minimum for p in parts if p.minimum is not None]
    maximums = [p.maximum for p in parts if p.maximum is not None]
    merged.minimum = min(minimums) if minimums else None
    merged.maximum = max(maximums) if maximums else None
    merged.total = sum(p.total for p in parts)
    merged.squares = sum(p.squares for p in parts)
    sketches = [p.sketch for p in parts if p.sketch is not None]
    merged.sketch = _sketch.merge(*sketches, k=k) if sketches else None
    if any(p.counts is None for p in parts):
        merged.counts = None
    else:
        counts: dict[Any, int] = {}
        for part in parts:
            for value, count in (part.counts or {}).items():
                counts[value] = counts.get(value, 0) + count
        merged.counts = counts if len(counts) <= MAX_CATEGORIES else None
    return merged


def merge_frames(*parts: dict[str, Profile]) -> dict[str, Profile]:
    """Merge dicts of profiles column by column (a column is merged over the parts that
    have it)."""
    names = list(dict.fromkeys(name for part in parts for name in part))
    return {name: merge_profiles(*(p[name] for p in parts if name in p)) for name in names}


def profile_frame(frame: pd.DataFrame, columns: list[str]) -> dict[str, Profile]:
    """The profile of each of ``columns`` of one block."""
    return {name: profile_values(frame[name]) for name in columns}


def _is_number(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _is_integer(dtype: Any) -> bool:
    return pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON writes."""
    return value.item() if isinstance(value, np.generic) else value
