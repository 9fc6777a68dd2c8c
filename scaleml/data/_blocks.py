"""Blocks: the unit in which a dataset is read, small enough to hold in a worker's memory.

A block is a small picklable description of where its rows are. ``read`` runs wherever the
block is needed (usually inside a task on a Dask worker), so the client never holds the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class Block(Protocol):
    """Where one block's rows live, and how to read them."""

    def read(self, columns: list[str]) -> pd.DataFrame:
        """Read this block's ``columns`` as a pandas DataFrame."""
        ...


@dataclass(frozen=True)
class ParquetBlock:
    """Consecutive row groups of one Parquet file, read directly with pyarrow."""

    path: str
    row_groups: tuple[int, ...]
    n_rows: int
    storage_options: dict[str, Any] = field(default_factory=dict)

    def read(self, columns: list[str]) -> pd.DataFrame:
        return self.read_table(columns).to_pandas()

    def read_table(self, columns: list[str]) -> pa.Table:
        """Read this block's ``columns`` as an Arrow table.

        A local file is opened by pyarrow itself (native reads, no Python file object in
        between); a URL goes through fsspec with ``storage_options``.
        """
        with _open_parquet(self.path, self.storage_options) as parquet:
            return parquet.read_row_groups(list(self.row_groups), columns=columns)


@dataclass(frozen=True)
class DaskPartitionBlock:
    """One partition of a ``dask.dataframe`` collection (used for CSV), as a culled graph."""

    partition: Any  # a dask Delayed whose graph holds only this partition's tasks
    n_rows: int | None = None

    def read(self, columns: list[str]) -> pd.DataFrame:
        frame = self.partition.compute(scheduler="sync")
        return frame[columns]


def distinct_values(block: Block, column: str) -> np.ndarray:
    """The distinct non-null values of one ``column`` of ``block`` (only that column is read)."""
    if isinstance(block, ParquetBlock):
        values = block.read_table([column]).column(0).drop_null().unique()
        return values.to_numpy(zero_copy_only=False)
    return block.read([column])[column].dropna().unique()


def to_xy(
    frame: pd.DataFrame, features: list[str], target: str | None, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray | None]:
    """Split a block's frame into a feature matrix of ``dtype`` and the target vector."""
    x = np.ascontiguousarray(frame[features].to_numpy(dtype=dtype))
    y = None if target is None else frame[target].to_numpy()
    return x, y


def read_xy(
    block: Block, features: list[str], target: str | None, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one block as ``(X, y)`` NumPy arrays; ``X`` is C-contiguous, as estimators want."""
    columns = [*features, target] if target is not None else list(features)
    if isinstance(block, ParquetBlock):
        # Arrow columns straight into one matrix: no DataFrame, one copy of the block.
        table = block.read_table(columns)
        x = np.empty((table.num_rows, len(features)), dtype=dtype)
        for position, name in enumerate(features):
            x[:, position] = table.column(name).to_numpy(zero_copy_only=False)
        y = None if target is None else table.column(target).to_numpy(zero_copy_only=False)
        return x, y
    return to_xy(block.read(columns), features, target, dtype)


def parquet_blocks(
    paths: list[str],
    *,
    max_block_rows: int,
    storage_options: dict[str, Any],
) -> list[ParquetBlock]:
    """Cut Parquet files into blocks of whole row groups, at most ``max_block_rows`` rows each
    (a single larger row group is one block)."""
    blocks: list[ParquetBlock] = []
    for path in paths:
        with _open_parquet(path, storage_options) as parquet:
            metadata = parquet.metadata
        group: list[int] = []
        group_rows = 0
        for index in range(metadata.num_row_groups):
            rows = metadata.row_group(index).num_rows
            if group and group_rows + rows > max_block_rows:
                blocks.append(ParquetBlock(path, tuple(group), group_rows, storage_options))
                group, group_rows = [], 0
            group.append(index)
            group_rows += rows
        if group:
            blocks.append(ParquetBlock(path, tuple(group), group_rows, storage_options))
    return blocks


_LOCAL_PROTOCOLS = (None, "file", "local")


@contextmanager
def _open_parquet(path: str, storage_options: dict[str, Any]) -> Iterator[pq.ParquetFile]:
    """Open a Parquet file: a local path natively with pyarrow, a URL through fsspec."""
    protocol, local_path = fsspec.core.split_protocol(path)
    if protocol in _LOCAL_PROTOCOLS:
        with pq.ParquetFile(local_path) as parquet:
            yield parquet
        return
    with (
        fsspec.open(path, "rb", **storage_options) as handle,
        pq.ParquetFile(handle) as parquet,
    ):
        yield parquet
