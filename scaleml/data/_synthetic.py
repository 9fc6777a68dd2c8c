"""Synthetic tabular data written as Parquet, block by block, in bounded memory."""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scaleml.errors import DatasetError

Task = Literal["classification", "regression"]


def write_synthetic(
    path: str | Path,
    *,
    rows: int,
    features: int = 20,
    informative: int | None = None,
    task: Task = "classification",
    n_classes: int = 2,
    noise: float = 1.0,
    block_rows: int = 100_000,
    dtype: str = "float64",
    random_state: int = 0,
    overwrite: bool = False,
    on_block: Callable[[int, int], object] | None = None,
) -> Path:
    """Write a synthetic dataset of ``rows`` rows as a directory of Parquet files.

    Features ``f000, f001, ...`` are standard normal; the first ``informative`` of them drive the
    target through a fixed random linear model, the rest are noise. Classification labels are
    ``0 .. n_classes-1`` drawn from a softmax of the linear scores (so they are learnable but not
    separable); regression targets are the linear score plus Gaussian noise of scale ``noise``.

    One block of ``block_rows`` rows is generated and written at a time, so memory stays at one
    block whatever ``rows`` is. Block ``i`` depends only on ``(random_state, i)``. Files go to a
    temporary directory next to ``path`` that is renamed to ``path`` when complete.

    Returns:
        The dataset directory.

    Raises:
        DatasetError: bad arguments, or ``path`` exists and ``overwrite`` is false.
    """
    _check_arguments(rows, features, informative, task, n_classes, block_rows, dtype)
    informative = min(features, informative or max(2, features // 2))
    target = Path(path)
    if target.exists() and not overwrite:
        raise DatasetError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        weights = _linear_model(features, informative, task, n_classes, random_state)
        n_blocks = math.ceil(rows / block_rows)
        names = [f"f{i:03d}" for i in range(features)]
        for index in range(n_blocks):
            size = min(block_rows, rows - index * block_rows)
            table = _make_block(size, index, names, weights, task, noise, dtype, random_state)
            pq.write_table(table, staging / f"part-{index:05d}.parquet", row_group_size=size)
            if on_block is not None:
                on_block(index + 1, n_blocks)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _check_arguments(
    rows: int,
    features: int,
    informative: int | None,
    task: str,
    n_classes: int,
    block_rows: int,
    dtype: str,
) -> None:
    if rows < 1:
        raise DatasetError(f"rows must be >= 1, got {rows}")
    if features < 1:
        raise DatasetError(f"features must be >= 1, got {features}")
    if informative is not None and informative < 1:
        raise DatasetError(f"informative must be >= 1, got {informative}")
    if task not in ("classification", "regression"):
        raise DatasetError(f"task must be 'classification' or 'regression', got {task!r}")
    if task == "classification" and n_classes < 2:
        raise DatasetError(f"n_classes must be >= 2, got {n_classes}")
    if block_rows < 1:
        raise DatasetError(f"block_rows must be >= 1, got {block_rows}")
    if dtype not in ("float32", "float64"):
        raise DatasetError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def _linear_model(
    features: int, informative: int, task: str, n_classes: int, random_state: int
) -> np.ndarray:
    rng = np.random.default_rng([random_state, 2**31 - 1])
    outputs = 1 if task == "regression" or n_classes == 2 else n_classes
    weights = np.zeros((features, outputs))
    # Scaled so the linear score has a standard deviation of about 2 whatever `informative` is.
    weights[:informative] = rng.standard_normal((informative, outputs)) * 2.0 / np.sqrt(informative)
    return weights


def _make_block(
    size: int,
    index: int,
    names: list[str],
    weights: np.ndarray,
    task: str,
    noise: float,
    dtype: str,
    random_state: int,
) -> pa.Table:
    rng = np.random.default_rng([random_state, index])
    x = rng.standard_normal((size, len(names))).astype(dtype)
    score = x.astype(np.float64) @ weights
    if task == "regression":
        y = score[:, 0] + noise * rng.standard_normal(size)
    elif weights.shape[1] == 1:
        probability = 1.0 / (1.0 + np.exp(-score[:, 0]))
        y = (rng.random(size) < probability).astype(np.int64)
    else:
        y = np.argmax(score + rng.gumbel(size=score.shape), axis=1).astype(np.int64)
    columns = {name: x[:, i] for i, name in enumerate(names)}
    columns["target"] = y
    return pa.table(columns)
