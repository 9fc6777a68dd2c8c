"""Functions that run inside tasks on Dask workers during incremental training."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaleml.data._blocks import Block, read_xy
from scaleml.train._scoring import block_statistics


@dataclass
class ModelState:
    """A model in training, as held on a worker, with how much it has seen."""

    estimator: Any
    rows_seen: int = 0
    partial_fit_calls: int = 0


@dataclass(frozen=True)
class BlockColumns:
    """Which columns of a block to read, and the dtype of the feature matrix."""

    features: list[str]
    target: str | None
    dtype: np.dtype


def load_block(block: Block, columns: BlockColumns) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one block as ``(X, y)``."""
    return read_xy(block, columns.features, columns.target, columns.dtype)


def partial_fit(
    state: ModelState, xy: tuple[np.ndarray, np.ndarray | None], classes: np.ndarray | None
) -> ModelState:
    """One ``partial_fit`` call on one block, on a copy: the input state stays as it was, so a
    task that is re-run (after a worker died) starts from the same model."""
    x, y = xy
    estimator = copy.deepcopy(state.estimator)
    if classes is not None:
        estimator.partial_fit(x, y, classes=classes)
    elif y is not None:
        estimator.partial_fit(x, y)
    else:
        estimator.partial_fit(x)
    return ModelState(estimator, state.rows_seen + len(x), state.partial_fit_calls + 1)


def score_block(state: ModelState, block: Block, columns: BlockColumns) -> dict[str, float]:
    """Load a validation block and return the model's additive statistics on it."""
    x, y = load_block(block, columns)
    return block_statistics(state.estimator, x, y)
