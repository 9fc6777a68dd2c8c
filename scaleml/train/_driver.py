"""The driver of one incremental training: it submits the ``fit_blocks`` and scoring tasks,
waits for them, and folds the contract's statistics the tasks gather (when asked)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from distributed import Client, Future, wait

from scaleml.monitor._pass import OUTPUT, ProfileFold, TrainingProfiles
from scaleml.train._scoring import add_statistics, metrics_from_statistics
from scaleml.train._tasks import (
    BlockColumns,
    ModelState,
    fit_blocks,
    score_and_profile_blocks,
    score_blocks,
    take_profiles,
)

if TYPE_CHECKING:
    from scaleml.data import Dataset


class Driver:
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
        label: str = "",
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
        self.token = f"{label}-{uuid.uuid4().hex[:8]}" if label else uuid.uuid4().hex[:8]
        self._outstanding: list[Future] = []
        self._data_fold: ProfileFold | None = None
        self._profiling = False
        self._output_fold: ProfileFold | None = None

    def fit_epoch(self, state: Future, order: list[int], *, profile: bool = False) -> Future:
        """Fit the blocks in ``order``, ``blocks_per_task`` per task; return the final state.

        The next task is submitted before the current one finishes, so the worker that holds
        the state starts it at once; at most two fit tasks are outstanding, and only one runs
        (each needs its predecessor's state). With ``profile`` the tasks profile their blocks
        and the client folds the profiles as each task finishes.
        """
        self._profiling = profile
        if profile:
            self._data_fold = ProfileFold()
        runs = [
            order[start : start + self.blocks_per_task]
            for start in range(0, len(order), self.blocks_per_task)
        ]
        running: tuple[Future, int] | None = None
        for run in runs:
            state = self._fit(state, run, profile)
            self._outstanding = [state] if running is None else [running[0], state]
            if running is not None:
                self._finish(*running)
            running = (state, len(run))
        if running is not None:
            self._outstanding = [running[0]]
            self._finish(*running)
        self.rows_seen = self._rows(state)
        return state

    def validate(self, state: Future, *, profile: bool = False) -> dict[str, float]:
        """Score the model on every validation block, on the workers, ``blocks_per_task``
        blocks per task; with ``profile``, also profile its predictions."""
        validation = self.dataset.validation_blocks
        runs = [
            validation[start : start + self.blocks_per_task]
            for start in range(0, len(validation), self.blocks_per_task)
        ]
        futures = [
            self.client.submit(
                score_and_profile_blocks if profile else score_blocks,
                state,
                [self.dataset.blocks[index] for index in run],
                self.columns,
                key=f"score_blocks-{self.token}-{run[0]}-{uuid.uuid4().hex[:6]}",
            )
            for run in runs
        ]
        self._outstanding = [state, *futures]
        parts = []
        self._output_fold = ProfileFold() if profile else None
        for future, run in zip(futures, runs, strict=True):
            part = future.result()
            if self._output_fold is not None:
                part, outputs = part
                for output in outputs:
                    self._output_fold.add({OUTPUT: output})
            parts.append(part)
            self._count_blocks(len(run))
        return metrics_from_statistics(add_statistics(parts))

    def gathered(self) -> TrainingProfiles | None:
        """The contract's statistics the training's pass gathered."""
        if self._data_fold is None:
            return None
        output = self._output_fold
        return TrainingProfiles(
            self._data_fold.result(),
            self._data_fold.parts,
            output.result().get(OUTPUT) if output is not None and output.parts else None,
            output.parts if output is not None else 0,
        )

    def cancel_outstanding(self) -> None:
        """Cancel whatever this training still has on the cluster (after an error)."""
        pending = [f for f in self._outstanding if not f.done()]
        if pending:
            self.client.cancel(pending)
        self._outstanding = []

    def _fit(self, state: Future, run: list[int], profile: bool) -> Future:
        return self.client.submit(
            fit_blocks,
            state,
            [self.dataset.blocks[index] for index in run],
            self.columns,
            self.classes,
            prefetch=self.prefetch,
            profile=profile,
            key=f"fit_blocks-{self.token}-{run[0]}-{uuid.uuid4().hex[:6]}",
        )

    def _finish(self, fitted: Future, n_blocks: int) -> None:
        wait(fitted)
        if fitted.status == "error":
            fitted.result()  # raises the worker's exception here
        if self._profiling and self._data_fold is not None:
            key = f"profiles-{self.token}-{uuid.uuid4().hex}"
            for profiles in self.client.submit(take_profiles, fitted, key=key).result():
                self._data_fold.add(profiles)
        self._count_blocks(n_blocks)

    def _rows(self, state: Future) -> int:
        key = f"rows-{self.token}-{uuid.uuid4().hex}"
        return self.client.submit(_rows_seen, state, key=key).result()

    def _count_blocks(self, n_blocks: int) -> None:
        for _ in range(n_blocks):
            self.blocks_done += 1
            if self.on_block_done is not None:
                self.on_block_done(self.blocks_done, self.blocks_total)


def _rows_seen(state: ModelState) -> int:
    return state.rows_seen
