"""Per-column statistics of a dataset, computed block by block where the blocks are read.

Each block yields small additive statistics per column (count, nulls, min, max, sum) and, for
integer columns, its distinct values; the parts are added on the client and the distinct
values merged pairwise on the workers, so only the final counts reach the client. NaN counts
as a null, as in pandas. Text columns get only their counts: their values are never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ColumnStatistics:
    """One column's statistics over every row of a dataset."""

    dtype: str
    count: int
    """Non-null values (NaN counts as null)."""
    nulls: int
    min: float | int | None = None
    max: float | int | None = None
    mean: float | None = None
    distinct: int | None = None
    """Distinct non-null values, for integer columns."""

    def to_dict(self) -> dict[str, Any]:
        """The statistics as a JSON-able dict (absent ones left out)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def column_statistics(
    blocks: list[Any],
    schema: dict[str, str],
    *,
    client: Any = None,
    on_block_done: Callable[[int, int], object] | None = None,
) -> dict[str, ColumnStatistics]:
    """Statistics of every column of ``schema`` (name -> dtype) over ``blocks``.

    With a ``client``, each block is read and summarised by a task on the cluster; else here,
    one block at a time.
    """
    columns = list(schema)
    integers = [name for name, dtype in schema.items() if _is_integer(dtype)]
    parts: list[dict[str, dict[str, Any]]] = []
    if client is None:
        distinct: list[Any] = []
        for done, block in enumerate(blocks, 1):
            part, values = block_statistics(block, columns, integers)
            parts.append(part)
            distinct.append(values)
            if on_block_done is not None:
                on_block_done(done, len(blocks))
        merged = _merge_all(distinct, _merge_distinct)
        counts = {name: len(merged[name]) for name in integers} if merged else {}
    else:
        from distributed import as_completed

        futures = client.map(block_statistics, blocks, columns=columns, integers=integers)
        for done, future in enumerate(as_completed(futures), 1):
            if future.status == "error":
                future.result()
            if on_block_done is not None:
                on_block_done(done, len(blocks))
        parts = client.gather([client.submit(_first, f) for f in futures])
        values = [client.submit(_second, f) for f in futures]
        del futures
        while len(values) > 1:
            values = [
                client.submit(_merge_distinct, *values[i : i + 2])
                if i + 1 < len(values)
                else values[i]
                for i in range(0, len(values), 2)
            ]
        counts = client.submit(_distinct_counts, values[0]).result() if values else {}
    return {
        name: _finish(schema[name], [part[name] for part in parts], counts.get(name))
        for name in columns
    }


def block_statistics(
    block: Any, columns: list[str], integers: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """One block's additive statistics per column, and its distinct integer values."""
    frame = block.read(columns)
    stats: dict[str, dict[str, Any]] = {}
    distinct: dict[str, np.ndarray] = {}
    for name in columns:
        series = frame[name]
        nulls = int(series.isna().sum())
        part: dict[str, Any] = {"count": len(series) - nulls, "nulls": nulls}
        if _is_numeric(series.dtype) and part["count"]:
            values = series.dropna().to_numpy()
            if values.dtype == np.bool_:
                values = values.astype(np.int64)
            part.update(min=values.min().item(), max=values.max().item())
            part["sum"] = float(np.sum(values, dtype=np.float64))
        stats[name] = part
        if name in integers:
            distinct[name] = np.unique(series.dropna().to_numpy())
    return stats, distinct


def _finish(dtype: str, parts: list[dict[str, Any]], distinct: int | None) -> ColumnStatistics:
    count = sum(p["count"] for p in parts)
    nulls = sum(p["nulls"] for p in parts)
    numeric = [p for p in parts if "min" in p]
    if not numeric:
        return ColumnStatistics(dtype, count, nulls, distinct=distinct)
    total = sum(p["sum"] for p in numeric)
    return ColumnStatistics(
        dtype,
        count,
        nulls,
        min=min(p["min"] for p in numeric),
        max=max(p["max"] for p in numeric),
        mean=total / count if count else None,
        distinct=distinct,
    )


def _merge_distinct(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.unique(np.concatenate([p[name] for p in parts])) for name in parts[0]}


def _merge_all(parts: list[Any], merge: Callable[..., Any]) -> Any:
    return merge(*parts) if parts else {}


def _distinct_counts(values: dict[str, np.ndarray]) -> dict[str, int]:
    return {name: len(unique) for name, unique in values.items()}


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def _is_integer(dtype: str) -> bool:
    return dtype.lower().startswith(("int", "uint"))


def _is_numeric(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
