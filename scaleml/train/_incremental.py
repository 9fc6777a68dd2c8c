"""Incremental training: blocks stream through ``partial_fit`` on the cluster.

The model lives on a worker as a future. One task fits a run of consecutive blocks
(``blocks_per_task``), reading the next block in a background thread while the current one is
fitted, with at most ``prefetch`` blocks in memory; each task is chained to the state the
previous one returned, so the blocks are fitted in order, and a worker holds at most a few
blocks plus the model. Validation blocks are read and scored on the workers; only small dicts
of statistics come back to the driver.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from distributed import Client, Future, get_client, wait

from scaleml.errors import TrainingError
from scaleml.estimators import is_incremental, name_features
from scaleml.train._scoring import (
    DEFAULT_SCORING,
    add_statistics,
    available_metrics,
    estimator_kind,
    improved,
    metrics_from_statistics,
)
from scaleml.train._tasks import BlockColumns, ModelState, fit_blocks, score_blocks

if TYPE_CHECKING:
    from scaleml.data import Dataset

DEFAULT_BLOCKS_PER_TASK = 10


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did: its block order, rows, time and validation metrics."""

    epoch: int
    block_order: list[int]
    rows: int
    seconds: float
    scores: dict[str, float]


@dataclass
class TrainingResult:
    """The fitted estimator and the history of its training."""

    estimator: Any
    history: list[EpochReport]
    scoring: str | None
    best_epoch: int | None
    best_score: float | None
    stopped_early: bool
    rows_trained: int
    partial_fit_calls: int
    seconds: float
    classes: list[Any] | None = field(default=None)

    @property
    def final_scores(self) -> dict[str, float]:
        """The validation metrics after the last epoch."""
        return dict(self.history[-1].scores) if self.history else {}

    @property
    def rows_per_second(self) -> float:
        """Training rows processed per second of wall time (validation included)."""
        return self.rows_trained / self.seconds if self.seconds > 0 else 0.0


def train_incremental(
    estimator: Any,
    dataset: Dataset,
    *,
    epochs: int = 1,
    client: Client | None = None,
    classes: list[Any] | np.ndarray | None = None,
    shuffle: bool = True,
    random_state: int | None = None,
    scoring: str | None = None,
    patience: int | None = None,
    tol: float = 1e-4,
    prefetch: int = 2,
    blocks_per_task: int = DEFAULT_BLOCKS_PER_TASK,
    on_epoch_end: Callable[[EpochReport], object] | None = None,
    on_block_done: Callable[[int, int], object] | None = None,
) -> TrainingResult:
    """Train ``estimator`` on ``dataset``'s training blocks with ``partial_fit`` on the cluster.

    The estimator passed in is not modified; a fitted copy is returned in the result.

    Args:
        estimator: an estimator with ``partial_fit`` (see ``scaleml.estimators``).
        dataset: the data; its training blocks are streamed, its validation blocks scored.
        epochs: passes over the training blocks.
        client: the Dask client; the current one (``distributed.get_client``) when omitted.
        classes: all class labels, for classifiers; read from the target column when omitted.
        shuffle: visit the training blocks in a new random order each epoch.
        random_state: seeds the block order.
        scoring: the validation metric that drives early stopping and ``best_score``
            (``accuracy``/``log_loss`` for classifiers, ``r2``/``mse``/``rmse``/``mae`` for
            regressors, ``inertia`` for clusterers); default accuracy, r2 or inertia.
        patience: stop after this many epochs without an improvement of more than ``tol``.
        tol: the smallest change of the scoring metric that counts as an improvement.
        prefetch: training blocks in a worker's memory at once, the one being fitted included
            (>= 1); with 2, the next block is read while the current one is fitted.
        blocks_per_task: consecutive training blocks fitted by one task (>= 1). More blocks
            per task cost less scheduling per block; fewer give finer progress and cancel
            sooner (a running task finishes its blocks).
        on_epoch_end: called with each epoch's :class:`EpochReport`.
        on_block_done: called with ``(blocks_done, blocks_total)`` once per block fitted or
            scored, in order; the calls for fitted blocks come ``blocks_per_task`` at a time,
            as each task finishes. The total assumes every epoch runs.

    Raises:
        TrainingError: an argument is invalid; raised before any work starts.
    """
    scoring = _check_arguments(
        estimator, dataset, epochs, scoring, patience, tol, prefetch, blocks_per_task
    )
    client = client or _current_client()
    kind = estimator_kind(estimator)
    if kind == "classifier" and classes is None and not hasattr(estimator, "classes_"):
        classes = dataset.classes(client)
    class_array = None if classes is None else np.asarray(classes)
    columns = BlockColumns(dataset.features, dataset.target, dataset.feature_dtype)
    driver = _Driver(
        client, dataset, columns, class_array, prefetch, blocks_per_task, on_block_done, epochs
    )
    rng = np.random.default_rng(random_state)
    started = time.perf_counter()
    # Scattering sends a copy: the caller's estimator is never modified.
    state = client.scatter(ModelState(estimator), hash=False)
    history: list[EpochReport] = []
    best_score: float | None = None
    best_epoch: int | None = None
    stale_epochs = 0
    try:
        for epoch in range(1, epochs + 1):
            epoch_started = time.perf_counter()
            order = list(dataset.train_blocks)
            if shuffle:
                order = [int(i) for i in rng.permutation(order)]
            rows_before = driver.rows_seen
            state = driver.fit_epoch(state, order)
            scores = driver.validate(state) if scoring else {}
            report = EpochReport(
                epoch=epoch,
                block_order=order,
                rows=driver.rows_seen - rows_before,
                seconds=time.perf_counter() - epoch_started,
                scores=scores,
            )
            history.append(report)
            if on_epoch_end is not None:
                on_epoch_end(report)
            if scoring:
                if improved(scores[scoring], best_score, scoring, tol):
                    best_score, best_epoch, stale_epochs = scores[scoring], epoch, 0
                else:
                    stale_epochs += 1
                if patience is not None and stale_epochs >= patience:
                    break
        final: ModelState = state.result()
    finally:
        driver.cancel_outstanding()
    fitted = final.estimator
    name_features(fitted, list(dataset.features))  # blocks reach partial_fit as arrays
    return TrainingResult(
        estimator=fitted,
        history=history,
        scoring=scoring,
        best_epoch=best_epoch,
        best_score=best_score,
        stopped_early=len(history) < epochs,
        rows_trained=final.rows_seen,
        partial_fit_calls=final.partial_fit_calls,
        seconds=time.perf_counter() - started,
        classes=None if class_array is None else class_array.tolist(),
    )


class _Driver:
    """Submits the tasks of one training: one ``fit_blocks`` task per run of consecutive
    blocks, each chained to the state the previous one returns."""

    def __init__(
        self,
        client: Client,
        dataset: Dataset,
        columns: BlockColumns,
        classes: np.ndarray | None,
        prefetch: int,
        blocks_per_task: int,
        on_block_done: Callable[[int, int], object] | None,
        epochs: int,
    ) -> None:
        self.client = client
        self.dataset = dataset
        self.columns = columns
        self.classes = classes
        self.prefetch = prefetch
        self.blocks_per_task = blocks_per_task
        self.on_block_done = on_block_done
        self.blocks_total = epochs * (len(dataset.train_blocks) + len(dataset.validation_blocks))
        self.blocks_done = 0
        self.rows_seen = 0
        self.token = uuid.uuid4().hex[:8]
        self._outstanding: list[Future] = []

    def fit_epoch(self, state: Future, order: list[int]) -> Future:
        """Fit the blocks in ``order``, ``blocks_per_task`` per task; return the final state.

        The next task is submitted before the current one finishes, so the worker that holds
        the state starts it at once; at most two fit tasks are outstanding, and only one runs
        (each needs its predecessor's state).
        """
        runs = [
            order[start : start + self.blocks_per_task]
            for start in range(0, len(order), self.blocks_per_task)
        ]
        running: tuple[Future, int] | None = None
        for run in runs:
            state = self._fit(state, run)
            self._outstanding = [state] if running is None else [running[0], state]
            if running is not None:
                self._finish(*running)
            running = (state, len(run))
        if running is not None:
            self._outstanding = [running[0]]
            self._finish(*running)
        self.rows_seen = self._rows(state)
        return state

    def validate(self, state: Future) -> dict[str, float]:
        """Score the model on every validation block, on the workers, ``blocks_per_task``
        blocks per task."""
        validation = self.dataset.validation_blocks
        runs = [
            validation[start : start + self.blocks_per_task]
            for start in range(0, len(validation), self.blocks_per_task)
        ]
        futures = [
            self.client.submit(
                score_blocks,
                state,
                [self.dataset.blocks[index] for index in run],
                self.columns,
                key=f"score_blocks-{self.token}-{run[0]}-{uuid.uuid4().hex[:6]}",
            )
            for run in runs
        ]
        self._outstanding = [state, *futures]
        parts = []
        for future, run in zip(futures, runs, strict=True):
            parts.append(future.result())
            self._count_blocks(len(run))
        return metrics_from_statistics(add_statistics(parts))

    def cancel_outstanding(self) -> None:
        """Cancel whatever this training still has on the cluster (after an error)."""
        pending = [f for f in self._outstanding if not f.done()]
        if pending:
            self.client.cancel(pending)
        self._outstanding = []

    def _fit(self, state: Future, run: list[int]) -> Future:
        return self.client.submit(
            fit_blocks,
            state,
            [self.dataset.blocks[index] for index in run],
            self.columns,
            self.classes,
            prefetch=self.prefetch,
            key=f"fit_blocks-{self.token}-{run[0]}-{uuid.uuid4().hex[:6]}",
        )

    def _finish(self, fitted: Future, n_blocks: int) -> None:
        wait(fitted)
        if fitted.status == "error":
            fitted.result()  # raises the worker's exception here
        self._count_blocks(n_blocks)

    def _rows(self, state: Future) -> int:
        return self.client.submit(_rows_seen, state, key=f"rows-{uuid.uuid4().hex}").result()

    def _count_blocks(self, n_blocks: int) -> None:
        for _ in range(n_blocks):
            self.blocks_done += 1
            if self.on_block_done is not None:
                self.on_block_done(self.blocks_done, self.blocks_total)


def _rows_seen(state: ModelState) -> int:
    return state.rows_seen


def _check_arguments(
    estimator: Any,
    dataset: Dataset,
    epochs: int,
    scoring: str | None,
    patience: int | None,
    tol: float,
    prefetch: int,
    blocks_per_task: int,
) -> str | None:
    if not is_incremental(estimator):
        raise TrainingError(
            f"{type(estimator).__name__} has no partial_fit; incremental training needs one of "
            "the incremental estimators (scaleml.estimators.INCREMENTAL_ESTIMATORS)"
        )
    if not isinstance(epochs, int) or epochs < 1:
        raise TrainingError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not isinstance(prefetch, int) or prefetch < 1:
        raise TrainingError(f"prefetch must be an integer >= 1, got {prefetch!r}")
    if not isinstance(blocks_per_task, int) or blocks_per_task < 1:
        raise TrainingError(f"blocks_per_task must be an integer >= 1, got {blocks_per_task!r}")
    if tol < 0:
        raise TrainingError(f"tol must be >= 0, got {tol!r}")
    if not dataset.train_blocks:
        raise TrainingError(f"{dataset!r} has no training blocks")
    kind = estimator_kind(estimator)
    if kind != "clusterer" and dataset.target is None:
        raise TrainingError(f"a {kind} needs a dataset with a target column")
    if not dataset.validation_blocks:
        if patience is not None:
            raise TrainingError("patience needs validation blocks; the dataset has none")
        return None
    metrics = available_metrics(estimator)
    chosen = scoring or DEFAULT_SCORING[kind]
    if chosen not in metrics:
        raise TrainingError(
            f"scoring must be one of {metrics} for {type(estimator).__name__}, got {scoring!r}"
        )
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise TrainingError(f"patience must be an integer >= 1 or None, got {patience!r}")
    return chosen


def _current_client() -> Client:
    try:
        return get_client()
    except ValueError:
        raise TrainingError(
            "no Dask client: pass client=, or open one with scaleml.cluster.connect()"
        ) from None
