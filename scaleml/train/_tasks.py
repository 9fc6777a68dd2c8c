"""Functions that run inside tasks on Dask workers during incremental training."""

from __future__ import annotations

import copy
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from scaleml._malloc import trim
from scaleml.data._blocks import Block, read_xy
from scaleml.monitor._pass import XYProfiles, output_profile, read_profiled
from scaleml.monitor._profile import Profile
from scaleml.train._scoring import add_statistics, block_statistics

XY = tuple[np.ndarray, np.ndarray | None]


@dataclass
class ModelState:
    """A model in training, as held on a worker, with how much it has seen."""

    estimator: Any
    rows_seen: int = 0
    partial_fit_calls: int = 0
    profiles: list[dict[str, Profile]] | None = None
    """The profiles of the blocks the task that returned this state read (when asked)."""


@dataclass(frozen=True)
class BlockColumns:
    """Which columns of a block to read, and the dtype of the feature matrix."""

    features: list[str]
    target: str | None
    dtype: np.dtype


def load_block(block: Block, columns: BlockColumns) -> XY:
    """Read one block as ``(X, y)``."""
    return read_xy(block, columns.features, columns.target, columns.dtype)


def load_profiled_block(block: Block, columns: BlockColumns) -> XYProfiles:
    """Read one block as ``(X, y)`` with its columns' profiles: ``(X, y, profiles)``."""
    return read_profiled(block, columns.features, columns.target, columns.dtype)


def fit_blocks(
    state: ModelState,
    blocks: list[Block],
    columns: BlockColumns,
    classes: np.ndarray | None,
    *,
    prefetch: int = 2,
    profile: bool = False,
) -> ModelState:
    """``partial_fit`` on each of ``blocks`` in order, reading ahead while fitting.

    A background thread reads the next blocks while the current one is fitted (pyarrow's
    reads and the estimators' inner loops release the GIL), with at most ``prefetch`` blocks
    in memory at once, the one being fitted included (``prefetch=1``: read, fit, read, ...).
    The result is the same as plain ``partial_fit`` calls on the blocks in this order.

    The estimator is copied first: the input state stays as it was, so a task that is re-run
    (after a worker died) starts from the same model.

    With ``profile``, the reading thread also profiles each block's columns for the contract
    (:mod:`scaleml.monitor._pass`), and the state returned holds one profile per block.
    """
    estimator = copy.deepcopy(state.estimator)
    rows = state.rows_seen
    calls = state.partial_fit_calls
    reader = _reader()
    read = load_profiled_block if profile else load_block
    profiles: list[dict[str, Profile]] = []
    # Each read is submitted only when a slot is free: reads in flight or done plus the block
    # being fitted never exceed `prefetch`.
    pending: deque[Future[Any]] = deque()
    upcoming = iter(blocks)
    try:
        for block in upcoming:
            pending.append(reader.submit(read, block, columns))
            if len(pending) >= prefetch:
                break
        while pending:
            x, y, *profiled = pending.popleft().result()
            profiles.extend(profiled)
            _partial_fit(estimator, x, y, classes)
            rows += len(x)
            calls += 1
            del x, y  # this block's slot is free before the next read starts
            following = next(upcoming, None)
            if following is not None:
                pending.append(reader.submit(read, following, columns))
    finally:
        for future in pending:
            future.cancel()
        pending.clear()
        _return_free_memory()
    return ModelState(estimator, rows, calls, profiles if profile else None)


def take_profiles(state: ModelState) -> list[dict[str, Profile]]:
    """The block profiles a ``fit_blocks`` task gathered."""
    return state.profiles or []


def score_blocks(state: ModelState, blocks: list[Block], columns: BlockColumns) -> dict[str, float]:
    """Read validation blocks one at a time; return the model's summed additive statistics."""
    parts = []
    try:
        for block in blocks:
            x, y = load_block(block, columns)
            parts.append(block_statistics(state.estimator, x, y))
            del x, y
    finally:
        _return_free_memory()
    return add_statistics(parts)


def score_and_profile_blocks(
    state: ModelState, blocks: list[Block], columns: BlockColumns
) -> tuple[dict[str, float], list[Profile]]:
    """:func:`score_blocks`, with the profile of the model's predictions on each block."""
    parts, outputs = [], []
    try:
        for block in blocks:
            x, y = load_block(block, columns)
            predicted = state.estimator.predict(x)
            parts.append(block_statistics(state.estimator, x, y, predicted))
            outputs.append(output_profile(predicted))
            del x, y, predicted
    finally:
        _return_free_memory()
    return add_statistics(parts), outputs


def _partial_fit(
    estimator: Any, x: np.ndarray, y: np.ndarray | None, classes: np.ndarray | None
) -> None:
    if classes is not None:
        estimator.partial_fit(x, y, classes=classes)
    elif y is not None:
        estimator.partial_fit(x, y)
    else:
        estimator.partial_fit(x)


_readers = threading.local()


def _reader() -> ThreadPoolExecutor:
    """The read-ahead thread of the calling (task) thread, started on first use and kept:
    a new thread per task would leave a new allocator heap behind each time (pyarrow's
    mimalloc keeps per-thread heaps)."""
    executor = getattr(_readers, "executor", None)
    if executor is None:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scaleml-read")
        _readers.executor = executor
    return executor


def _return_free_memory() -> None:
    """Give the memory a task's blocks used back to the OS.

    Within a task, freed blocks stay with the allocators and are reused for the next block
    (see ``scaleml.cluster``: the workers' malloc settings). Between tasks they go back, so the
    worker's RSS, which Dask's memory monitor pauses and restarts workers on, shows only what
    is live; otherwise an idle worker could stay above the pause threshold for good. Arrow
    buffers come from pyarrow's own pool (mimalloc or jemalloc), the rest from glibc.
    """
    pa.default_memory_pool().release_unused()
    trim()
