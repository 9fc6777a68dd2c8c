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

from scaleml.data._checks import check_xy
from scaleml.data._errors import (
    CorruptFileError,
    SchemaMismatchError,
    missing_filesystem,
    reason,
)
from scaleml.errors import DatasetError


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
    first_row: int = 0
    """The row number, within the file, of the block's first row (for error messages)."""

    def read(self, columns: list[str]) -> pd.DataFrame:
        return self.read_table(columns).to_pandas()

    def read_table(self, columns: list[str]) -> pa.Table:
        """Read this block's ``columns`` as an Arrow table.

        A local file is opened by pyarrow itself (native reads, no Python file object in
        between); a URL goes through fsspec with ``storage_options``.

        Raises:
            SchemaMismatchError: the file lacks one of ``columns``.
            CorruptFileError: the file cannot be read as Parquet.
        """
        with _open_parquet(self.path, self.storage_options) as parquet:
            check_columns(self.path, f"file {self.path}", parquet.schema_arrow.names, columns)
            try:
                return parquet.read_row_groups(list(self.row_groups), columns=columns)
            except (pa.ArrowException, OSError) as exc:
                raise CorruptFileError(
                    f"file {self.path}: row groups {list(self.row_groups)} cannot be read as "
                    f"Parquet ({reason(exc)})",
                    path=self.path,
                ) from None

    def where(self, row: int) -> tuple[str, int | None, str]:
        """``(path, row within the file, description)`` of the block's ``row``."""
        return self.path, self.first_row + row, f"file {self.path}"


@dataclass(frozen=True)
class DaskPartitionBlock:
    """One partition of a ``dask.dataframe`` collection (used for CSV), as a culled graph."""

    partition: Any  # a dask Delayed whose graph holds only this partition's tasks
    n_rows: int | None = None
    path: str | None = None
    """The file the partition comes from, when known."""
    part_of_file: int = 0
    """Which of the file's partitions this is (a large CSV file is cut into several)."""

    def read(self, columns: list[str]) -> pd.DataFrame:
        try:
            frame = self.partition.compute(scheduler="sync")
        except DatasetError:
            raise
        except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas' parser errors too
            path, _, described = self.where(0)
            raise CorruptFileError(
                f"{described} cannot be parsed ({reason(exc)})", path=path
            ) from None
        path, _, described = self.where(0)
        check_columns(path, described, list(frame.columns), columns)
        return frame[columns]

    def where(self, row: int) -> tuple[str | None, int | None, str]:
        """``(path, row within the file, description)`` of the partition's ``row``."""
        if self.path is None:
            return None, None, "a CSV block"
        if self.part_of_file == 0:
            return self.path, row, f"file {self.path}"
        return self.path, None, f"part {self.part_of_file + 1} of file {self.path}"


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
        x, y = table_xy(block.read_table(columns), features, target, dtype)
    else:
        x, y = to_xy(block.read(columns), features, target, dtype)
    check_xy(block, x, y, features, target)
    return x, y


def table_xy(
    table: pa.Table, features: list[str], target: str | None, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray | None]:
    """Arrow columns straight into one C-contiguous matrix (no DataFrame, one copy of the
    block) and the target vector."""
    x = np.empty((table.num_rows, len(features)), dtype=dtype)
    for position, name in enumerate(features):
        x[:, position] = table.column(name).to_numpy(zero_copy_only=False)
    y = None if target is None else table.column(target).to_numpy(zero_copy_only=False)
    return x, y


def check_columns(
    path: str | None, described: str, available: list[str], columns: list[str]
) -> None:
    """Raise :class:`SchemaMismatchError` naming the columns of ``columns`` that a file
    (``described``, e.g. ``"file data/part-3.parquet"``) lacks."""
    present = set(available)
    missing = [name for name in columns if name not in present]
    if missing:
        raise SchemaMismatchError(
            f"{described} has no column(s) {missing}; the dataset reads {len(columns)} "
            f"column(s) and this file has {len(available)}",
            path=path,
            column=missing[0],
        )


def parquet_blocks(
    files: dict[str, ParquetFileInfo],
    *,
    max_block_rows: int,
    storage_options: dict[str, Any],
) -> list[ParquetBlock]:
    """Cut Parquet files (as :func:`scan_parquet` found them) into blocks of whole row groups,
    at most ``max_block_rows`` rows each (a single larger row group is one block)."""
    blocks: list[ParquetBlock] = []
    for path, info in files.items():
        group: list[int] = []
        group_rows = 0
        first_row = 0
        for index, rows in enumerate(info.row_group_rows):
            if group and group_rows + rows > max_block_rows:
                blocks.append(
                    ParquetBlock(path, tuple(group), group_rows, storage_options, first_row)
                )
                first_row += group_rows
                group, group_rows = [], 0
            group.append(index)
            group_rows += rows
        if group:
            blocks.append(ParquetBlock(path, tuple(group), group_rows, storage_options, first_row))
    return blocks


@dataclass(frozen=True)
class ParquetFileInfo:
    """What a Parquet file's footer says: rows per row group and the column names."""

    row_group_rows: tuple[int, ...]
    columns: tuple[str, ...]


def scan_parquet(paths: list[str], storage_options: dict[str, Any]) -> dict[str, ParquetFileInfo]:
    """Read every file's footer (in file order).

    Raises:
        CorruptFileError: a file is not readable Parquet (the message names it).
        MissingFilesystemError: a URL's filesystem package is not installed.
    """
    found: dict[str, ParquetFileInfo] = {}
    for path in paths:
        with _open_parquet(path, storage_options) as parquet:
            metadata = parquet.metadata
            names = tuple(parquet.schema_arrow.names)
        rows = tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
        found[path] = ParquetFileInfo(rows, names)
    return found


_LOCAL_PROTOCOLS = (None, "file", "local")


@contextmanager
def _open_parquet(path: str, storage_options: dict[str, Any]) -> Iterator[pq.ParquetFile]:
    """Open a Parquet file: a local path natively with pyarrow, a URL through fsspec."""
    protocol, local_path = fsspec.core.split_protocol(path)
    if protocol in _LOCAL_PROTOCOLS:
        with _parquet_file(path, local_path) as parquet:
            yield parquet
        return
    try:
        opened = fsspec.open(path, "rb", **storage_options)
    except ImportError as exc:
        raise missing_filesystem(path, exc) from None
    with opened as handle, _parquet_file(path, handle) as parquet:
        yield parquet


def _parquet_file(path: str, source: Any) -> pq.ParquetFile:
    """``pq.ParquetFile(source)``; a file that is not Parquet raises :class:`CorruptFileError`
    naming ``path``."""
    try:
        return pq.ParquetFile(source)
    except FileNotFoundError:
        raise DatasetError(
            f"no such file: {path} (it was there when the dataset was opened)"
        ) from None
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(
            f"file {path} is not a readable Parquet file ({reason(exc)}): replace or remove it",
            path=path,
        ) from None
