"""Incremental training: blocks stream through ``partial_fit`` on the cluster.

The model lives on a worker as a future. One task fits a run of consecutive blocks
(``blocks_per_task``), reading the next block in a background thread while the current one is
fitted, with at most ``prefetch`` blocks in memory; each task is chained to the state the
previous one returned, so the blocks are fitted in order, and a worker holds at most a few
blocks plus the model. Validation blocks are read and scored on the workers; only small dicts
of statistics come back to the driver (:mod:`scaleml.train._driver`). With ``profile_data``
the same tasks also gather the contract's statistics (:mod:`scaleml.monitor._pass`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from distributed import Client, get_client

from scaleml.dashboard._events import activity, publish, task_label
from scaleml.errors import TrainingError
from scaleml.estimators import is_incremental, name_features
from scaleml.monitor._pass import TrainingProfiles
from scaleml.train._driver import Driver
from scaleml.train._scoring import (
    DEFAULT_SCORING,
    available_metrics,
    estimator_kind,
    improved,
)
from scaleml.train._tasks import BlockColumns, ModelState

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
    profiles: TrainingProfiles | None = field(default=None)
    """What the training's pass gathered for the contract (with ``profile_data``)."""

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
    profile_data: bool = False,
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
        profile_data: also gather the contract's statistics (:mod:`scaleml.monitor`) in the
            training's own pass: the first epoch's tasks profile the blocks they read, the
            last validation profiles the model's predictions; in ``result.profiles``.

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
    label = task_label(estimator)
    driver = Driver(
        client,
        dataset,
        columns,
        class_array,
        prefetch,
        blocks_per_task,
        on_block_done,
        epochs,
        label=label,
    )
    rng = np.random.default_rng(random_state)
    started = time.perf_counter()
    # Scattering sends a copy: the caller's estimator is never modified.
    state = client.scatter(ModelState(estimator), hash=False)
    history: list[EpochReport] = []
    best_score: float | None = None
    best_epoch: int | None = None
    stale_epochs = 0
    with (
        activity(
            "training",
            type(estimator).__name__,
            client=client,
            epochs=epochs,
            scoring=scoring,
            trainer="incremental",
        ) as here,
        ExitStack() as stack,
    ):
        stack.callback(driver.cancel_outstanding)
        for epoch in range(1, epochs + 1):
            epoch_started = time.perf_counter()
            order = list(dataset.train_blocks)
            if shuffle:
                order = [int(i) for i in rng.permutation(order)]
            rows_before = driver.rows_seen
            state = driver.fit_epoch(state, order, profile=profile_data and epoch == 1)
            last = epoch == epochs or patience is not None
            scores = driver.validate(state, profile=profile_data and last) if scoring else {}
            report = EpochReport(
                epoch=epoch,
                block_order=order,
                rows=driver.rows_seen - rows_before,
                seconds=time.perf_counter() - epoch_started,
                scores=scores,
            )
            history.append(report)
            publish("training", _epoch_record(here.id, report), client)
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
        profiles=driver.gathered() if profile_data else None,
    )


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


def _epoch_record(training_id: str, report: EpochReport) -> dict[str, Any]:
    """What the dashboard's trainings page gets after each epoch."""
    rate = report.rows / report.seconds if report.seconds > 0 else None
    return {
        "event": "epoch",
        "id": training_id,
        "epoch": report.epoch,
        "rows": report.rows,
        "seconds": report.seconds,
        "rows_per_s": rate,
        "scores": report.scores,
    }


def _current_client() -> Client:
    try:
        return get_client()
    except ValueError:
        raise TrainingError(
            "no Dask client: pass client=, or open one with scaleml.cluster.connect()"
        ) from None
