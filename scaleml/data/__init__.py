"""Data stage: lazy, out-of-core tabular datasets and synthetic data generators.

``Dataset`` and ``write_synthetic`` are imported on first use, so that worker processes, which
only unpickle blocks, do not pay for importing ``dask.dataframe`` (about 80 MB per worker).
"""

from typing import TYPE_CHECKING, Any

from scaleml.data._blocks import Block, DaskPartitionBlock, ParquetBlock, read_xy
from scaleml.data._errors import (
    CorruptFileError,
    DataFileError,
    MissingFilesystemError,
    NonFiniteValueError,
    SchemaMismatchError,
)
from scaleml.data._statistics import ColumnStatistics

if TYPE_CHECKING:
    from scaleml.data._dataset import Dataset
    from scaleml.data._synthetic import write_synthetic

__all__ = [
    "Block",
    "ColumnStatistics",
    "CorruptFileError",
    "DaskPartitionBlock",
    "DataFileError",
    "Dataset",
    "MissingFilesystemError",
    "NonFiniteValueError",
    "ParquetBlock",
    "SchemaMismatchError",
    "read_xy",
    "write_synthetic",
]


def __getattr__(name: str) -> Any:
    if name == "Dataset":
        from scaleml.data._dataset import Dataset

        return Dataset
    if name == "write_synthetic":
        from scaleml.data._synthetic import write_synthetic

        return write_synthetic
    raise AttributeError(f"module 'scaleml.data' has no attribute {name!r}")
