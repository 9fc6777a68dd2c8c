"""Data stage: lazy, out-of-core tabular datasets and synthetic data generators."""

from scaleml.data._blocks import Block, DaskPartitionBlock, ParquetBlock, read_xy
from scaleml.data._dataset import Dataset
from scaleml.data._synthetic import write_synthetic

__all__ = ["Block", "DaskPartitionBlock", "Dataset", "ParquetBlock", "read_xy", "write_synthetic"]
