"""``Dataset``: lazy, out-of-core tabular data with a target, features and a split by block."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, Literal

import dask
import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd

from scaleml.data._blocks import (
    Block,
    DaskPartitionBlock,
    ParquetFileInfo,
    check_columns,
    distinct_values,
    parquet_blocks,
    read_xy,
    scan_parquet,
)
from scaleml.data._errors import missing_filesystem
from scaleml.data._statistics import ColumnStatistics, column_statistics
from scaleml.errors import DatasetError

Format = Literal["parquet", "csv"]
_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".csv.bz2": "csv",
}


class Dataset:
    """Tabular data in Parquet or CSV files, read lazily, one block at a time.

    Args:
        path: a file, a directory, a glob (``data/*.parquet``), a list of those, or fsspec URLs.
        target: the column to predict; ``None`` for unsupervised estimators.
        features: feature columns; default every column except the target. Must be numeric.
        format: ``"parquet"`` or ``"csv"``; default from the file names.
        validation_fraction: the share of blocks held out for validation (at least one block
            when there are two or more).
        split_seed: seeds the choice of validation blocks; the same seed gives the same split.
        max_block_rows: Parquet files are cut into blocks of whole row groups of at most this
            many rows (a larger row group is one block).
        csv_blocksize: bytes per CSV block, as in :func:`dask.dataframe.read_csv`.
        storage_options: passed to fsspec for remote URLs.

    Raises:
        DatasetError: the path matches no file, a column is missing, or a feature is not numeric.
            Subclasses name the file: ``CorruptFileError`` (not readable Parquet),
            ``SchemaMismatchError`` (one file lacks a column the others have),
            ``MissingFilesystemError`` (``s3://`` ... without ``s3fs``: install
            ``scaleml[s3]``, ``[gcs]`` or ``[azure]``). Reading blocks later (on the workers)
            raises these and ``NonFiniteValueError`` (NaN or infinity in a feature or the
            target), naming the file, column and row.
    """

    def __init__(
        self,
        path: str | list[str],
        target: str | None,
        features: list[str] | None = None,
        *,
        format: Format | None = None,
        validation_fraction: float = 0.2,
        split_seed: int = 0,
        max_block_rows: int = 250_000,
        csv_blocksize: str | int = "64MiB",
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if not 0.0 <= validation_fraction < 1.0:
            raise DatasetError(
                f"validation_fraction must be in [0, 1), got {validation_fraction!r}"
            )
        if max_block_rows < 1:
            raise DatasetError(f"max_block_rows must be >= 1, got {max_block_rows!r}")
        self.source = path
        self.target = target
        self.validation_fraction = validation_fraction
        self.split_seed = split_seed
        self.storage_options = dict(storage_options or {})
        self.paths = _expand_paths(path, self.storage_options)
        self.format: Format = format or _infer_format(self.paths)
        if self.format not in ("parquet", "csv"):
            raise DatasetError(f"format must be 'parquet' or 'csv', got {self.format!r}")
        self._csv_blocksize = csv_blocksize
        # Every Parquet footer is read first, so a corrupt file is named before anything else.
        self._parquet_files: dict[str, ParquetFileInfo] = (
            scan_parquet(self.paths, self.storage_options) if self.format == "parquet" else {}
        )
        self._frame = self._read_lazily()
        self.features = self._resolve_features(features)
        for path, info in self._parquet_files.items():
            check_columns(path, f"file {path}", list(info.columns), self.columns)
        self.schema: dict[str, str] = {
            name: str(dtype) for name, dtype in self._frame.dtypes.items() if name in self.columns
        }
        self.feature_dtype = np.result_type(
            *(_numpy_dtype(self._frame.dtypes[f]) for f in self.features)
        )
        if self.feature_dtype == np.bool_:
            self.feature_dtype = np.dtype("float64")
        self.blocks: list[Block] = self._cut_blocks(max_block_rows)
        if not self.blocks:
            raise DatasetError(f"dataset {path!r} has no rows")
        self.train_blocks, self.validation_blocks = _split_blocks(
            len(self.blocks), validation_fraction, split_seed
        )

    @property
    def columns(self) -> list[str]:
        """Features followed by the target (when there is one)."""
        return [*self.features, self.target] if self.target is not None else list(self.features)

    @property
    def meta(self) -> pd.DataFrame:
        """An empty frame of the dataset's columns with their dtypes, from the files'
        metadata (nothing is read)."""
        return self._frame._meta[self.columns]

    @property
    def source_columns(self) -> list[str]:
        """Every column of the files, used by the dataset or not."""
        return [str(name) for name in self._frame.columns]

    @property
    def n_blocks(self) -> int:
        """How many blocks the dataset is read in."""
        return len(self.blocks)

    @cached_property
    def n_rows(self) -> int:
        """Total number of rows (Parquet: from file metadata; CSV: one pass on the cluster)."""
        known = [getattr(block, "n_rows", None) for block in self.blocks]
        if all(rows is not None for rows in known):
            return int(sum(known))
        return int(self._frame.map_partitions(len).sum().compute())

    @cached_property
    def fingerprint(self) -> str:
        """A SHA-256 over the files' names, sizes and modification stamps, and the columns."""
        fs, _ = fsspec.core.url_to_fs(self.paths[0], **self.storage_options)
        digest = hashlib.sha256()
        for path in self.paths:
            info = fs.info(path)
            stamp = info.get("mtime") or info.get("LastModified") or info.get("ETag") or ""
            digest.update(f"{path}\0{info.get('size')}\0{stamp}\n".encode())
        digest.update(json.dumps([self.features, self.target]).encode())
        return digest.hexdigest()

    def to_dask(self) -> dd.DataFrame:
        """The dataset's columns as a lazy :class:`dask.dataframe.DataFrame`."""
        return self._frame[self.columns]

    def read_block(self, index: int) -> pd.DataFrame:
        """Read one block's columns into memory (here, in the calling process)."""
        return self.blocks[index].read(self.columns)

    def read_xy(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Read one block as ``(X, y)`` NumPy arrays in the calling process."""
        return read_xy(self.blocks[index], self.features, self.target, self.feature_dtype)

    def iter_blocks(self, indices: list[int] | None = None) -> Iterator[pd.DataFrame]:
        """Yield blocks one at a time; only one is in memory at once."""
        for index in range(self.n_blocks) if indices is None else indices:
            yield self.read_block(index)

    def input_example(self, n_rows: int = 5) -> pd.DataFrame:
        """The first ``n_rows`` feature rows, for model signatures and examples."""
        return self.blocks[0].read(self.features).head(n_rows).reset_index(drop=True)

    def classes(self, client: Any = None) -> np.ndarray:
        """The sorted distinct target values, from one pass over the target column only.

        With a ``client``, each block's values are found by a task on the cluster (the
        workers read only the target column, with pyarrow); else in this process.
        """
        if self.target is None:
            raise DatasetError("the dataset has no target column, so it has no classes")
        if client is not None:
            parts = client.gather(
                client.map(distinct_values, self.blocks, column=self.target, pure=False)
            )
        else:
            parts = [distinct_values(block, self.target) for block in self.blocks]
        return np.unique(np.concatenate(parts))

    def statistics(
        self, client: Any = None, on_block_done: Callable[[int, int], object] | None = None
    ) -> dict[str, ColumnStatistics]:
        """Per-column statistics over every row: count, nulls (NaN counts as null), min, max
        and mean of numeric columns, and the distinct count of integer columns.

        Computed out of core, one block at a time: with a ``client`` by tasks on the cluster
        (only small summaries and the final distinct counts reach this process), else here.
        ``on_block_done`` is called with ``(blocks_done, blocks_total)``.
        """
        return column_statistics(
            self.blocks, dict(self.schema), client=client, on_block_done=on_block_done
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: source, files, format, columns, schema, blocks, rows."""
        return {
            "source": self.source,
            "paths": list(self.paths),
            "format": self.format,
            "target": self.target,
            "features": list(self.features),
            "schema": dict(self.schema),
            "n_blocks": self.n_blocks,
            "n_rows": self.n_rows,
            "train_blocks": len(self.train_blocks),
            "validation_blocks": len(self.validation_blocks),
            "validation_fraction": self.validation_fraction,
            "split_seed": self.split_seed,
            "fingerprint": self.fingerprint,
        }

    def __repr__(self) -> str:
        return (
            f"Dataset({self.source!r}, target={self.target!r}, features={len(self.features)}, "
            f"format={self.format!r}, blocks={self.n_blocks})"
        )

    def _read_lazily(self) -> dd.DataFrame:
        try:
            if self.format == "parquet":
                return dd.read_parquet(self.paths, storage_options=self.storage_options)
            return dd.read_csv(
                self.paths, blocksize=self._csv_blocksize, storage_options=self.storage_options
            )
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {self.source!r} as {self.format}: {exc}") from exc

    def _resolve_features(self, features: list[str] | None) -> list[str]:
        available = list(self._frame.columns)
        if self.target is not None and self.target not in available:
            raise DatasetError(
                f"target column {self.target!r} is not in the dataset "
                f"({_columns_hint(len(available))})"
            )
        if features is None:
            features = [c for c in available if c != self.target]
        else:
            missing = [f for f in features if f not in available]
            if missing:
                raise DatasetError(
                    f"feature column(s) {missing} not in the dataset "
                    f"({_columns_hint(len(available))})"
                )
            if self.target in features:
                raise DatasetError(f"the target column {self.target!r} is also listed as a feature")
        if not features:
            raise DatasetError("the dataset has no feature columns")
        for name in features:
            dtype = self._frame.dtypes[name]
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                raise DatasetError(
                    f"feature column {name!r} is not numeric (dtype {dtype}); "
                    "encode it or leave it out with an explicit feature list"
                )
        return list(features)

    def _cut_blocks(self, max_block_rows: int) -> list[Block]:
        if self.format == "parquet":
            return parquet_blocks(
                self._parquet_files,
                max_block_rows=max_block_rows,
                storage_options=self.storage_options,
            )
        partitions = self._frame[self.columns].to_delayed()
        files = _csv_partition_files(self.paths, len(partitions), self._csv_blocksize)
        return [
            DaskPartitionBlock(dask.optimize(part)[0], path=path, part_of_file=part_of_file)
            for part, (path, part_of_file) in zip(partitions, files, strict=True)
        ]


def _expand_paths(path: str | list[str], storage_options: dict[str, Any]) -> list[str]:
    sources = [path] if isinstance(path, str) else list(path)
    if not sources:
        raise DatasetError("no dataset path given")
    files: list[str] = []
    for source in sources:
        try:
            fs, stripped = fsspec.core.url_to_fs(source, **storage_options)
        except ImportError as exc:
            raise missing_filesystem(source, exc) from None
        matches = fs.glob(stripped) if any(c in stripped for c in "*?[") else [stripped]
        if not matches or not all(fs.exists(m) for m in matches):
            raise DatasetError(f"no such file or directory: {source}")
        for match in matches:
            if fs.isdir(match):
                found = sorted(
                    p
                    for p in fs.find(match)
                    if not p.rsplit("/", 1)[-1].startswith(("_", ".")) and _format_of(p) is not None
                )
                if not found:
                    raise DatasetError(f"directory {source} holds no Parquet or CSV files")
                files.extend(fs.unstrip_protocol(p) if "://" in source else p for p in found)
            else:
                files.append(fs.unstrip_protocol(match) if "://" in source else match)
    return files


def _columns_hint(count: int) -> str:
    """How many columns there are and where to see them: never their names, which come from
    the file's content."""
    return f"it has {count} column(s); 'scaleml data describe' lists them"


def _numpy_dtype(dtype: Any) -> Any:
    """The NumPy dtype a feature's values take in a matrix: pandas' nullable integers and
    booleans (``Int64`` ...) become float64, since their nulls become NaN."""
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        numpy = getattr(dtype, "numpy_dtype", None)
        return numpy if numpy is not None and numpy.kind == "f" else np.dtype("float64")
    return dtype


def _csv_partition_files(
    paths: list[str], n_partitions: int, blocksize: str | int
) -> list[tuple[str | None, int]]:
    """Which file each CSV partition comes from, and which of the file's parts it is.

    ``dd.read_csv`` cuts each file into parts of ``blocksize`` bytes (a compressed file is one
    part); the same cut is computed here from the files' sizes. Unknown: ``(None, 0)``.
    """
    from dask.utils import parse_bytes

    try:
        size = parse_bytes(blocksize) if isinstance(blocksize, str) else int(blocksize)
        fs, _ = fsspec.core.url_to_fs(paths[0])
        counts = [
            1
            if _format_of(path) != "csv" or path.lower().endswith((".gz", ".bz2"))
            else max(1, -(-int(fs.size(path)) // size))
            for path in paths
        ]
    except Exception:  # only error messages use this: an unknown mapping is no failure
        return [(None, 0)] * n_partitions
    if sum(counts) != n_partitions:
        return [(None, 0)] * n_partitions
    return [
        (path, part) for path, count in zip(paths, counts, strict=True) for part in range(count)
    ]


def _format_of(path: str) -> Format | None:
    lowered = path.lower()
    for suffix, fmt in _SUFFIXES.items():
        if lowered.endswith(suffix):
            return fmt
    return None


def _infer_format(paths: list[str]) -> Format:
    formats = {_format_of(p) for p in paths}
    if len(formats) == 1 and None not in formats:
        return formats.pop()  # type: ignore[return-value]
    raise DatasetError(
        "cannot tell the format from the file names (expected .parquet or .csv); "
        "pass format='parquet' or format='csv'"
    )


def _split_blocks(n_blocks: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Choose validation blocks with a seeded generator; the rest are training blocks."""
    if n_blocks < 2 or fraction == 0.0:
        return list(range(n_blocks)), []
    n_validation = min(n_blocks - 1, max(1, round(n_blocks * fraction)))
    chosen = np.random.default_rng(seed).choice(n_blocks, size=n_validation, replace=False)
    validation = sorted(int(i) for i in chosen)
    train = [i for i in range(n_blocks) if i not in set(validation)]
    return train, validation
