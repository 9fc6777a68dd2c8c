"""What the search driver keeps track of: groups of models, their trials, the batches in which
the models of a worker train together, and the order in which a group visits the blocks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import Future

from scaleml.search._policies import Decision, Info

Policy = Callable[[Info, Sequence[Decision]], Decision]


@dataclass
class Group:
    """Models whose decisions are taken together by one policy."""

    models: dict[Hashable, dict[str, Any]]
    """``{model_id: params}`` in creation order."""
    policy: Policy
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields added to each record of this group (e.g. ``{"bracket": 2}``)."""
    prefix: str = ""
    """Put in the group's progress messages, as ``[CV{prefix}]`` (dask-ml's per search, or
    per Hyperband bracket)."""
    split: Hashable = None
    """The train/test split the group's models train and score on (a key of the search's
    splits: Hyperband's brackets each have their own, as in dask-ml)."""
    lookahead: Callable[[int], int] | None = None
    """How many coming decisions are known to give every live model the same calls, from a
    model's calls so far (they do not depend on the scores); None when they may change."""
    info: dict[Hashable, list[dict[str, Any]]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    live: list[Hashable] = field(default_factory=list)
    waiting: set[Hashable] = field(default_factory=set)


class BlockOrder:
    """The training blocks of one group's models, call by call: shuffled passes over the
    blocks drawn as dask-ml draws them (``RandomState(seed).shuffle`` of ``range(n)``), shared
    by the group's models, so that call ``k`` of every model trains on the same block and a
    search with an integer ``random_state`` trains the models dask-ml would."""

    def __init__(self, n_blocks: int, seed: int) -> None:
        self._rng = np.random.RandomState(seed)
        self._n = n_blocks
        self._order: list[int] = []

    def __getitem__(self, call: int) -> int:
        while call >= len(self._order):
            blocks = list(range(self._n))
            self._rng.shuffle(blocks)
            self._order.extend(blocks)
        return self._order[call]


@dataclass(eq=False)
class Trial:
    """One model of a search, as the driver tracks it."""

    model_id: Hashable
    group: Group
    order: BlockOrder
    worker: str
    """The worker the model lives on when the blocks travel (see ``_placement``)."""
    source: Future
    """The batch holding the model's last completed state (its fresh clone before any call)."""
    speculative: Batch | None = None
    decided: list[int] = field(default_factory=list)
    restarted: bool = False

    @property
    def calls_done(self) -> int:
        """The ``partial_fit`` calls of the model's last report."""
        records = self.group.info[self.model_id]
        return records[-1]["partial_fit_calls"] if records else 0


@dataclass(eq=False)
class Batch:
    """Models of one group on one worker, due the same ``calls`` from the same ``start``."""

    trials: list[Trial]
    start: int
    calls: int
    rounds: int = 1
    """Steps of ``calls`` calls, each scored; more than one only where the group's decisions
    are known ahead (``Group.lookahead``): then one task runs them all."""
    retries: int = 0
    batch_id: str = ""
    state: Future | None = None
    """The batch after its last call, once submitted."""
    report: dict[str, Any] | None = None
    finished_polls: int = 0
    lost: bool = False
    """A task of this guessed step was lost with a worker (its models restart if it is kept)."""
    prefetches: dict[tuple[int, str], Future] = field(default_factory=dict)
    """The fetches ahead of this batch's blocks, ``{(block, worker): future}``."""

    @property
    def group(self) -> Group:
        """The group of the batch's models."""
        return self.trials[0].group

    @property
    def end(self) -> int:
        """The calls the models will have made after the batch."""
        return self.start + self.rounds * self.calls


def mark_restarted(trials: Sequence[Trial], prefix: str, why: str) -> None:
    """Mark the next records of ``trials`` ``restarted`` (warning once per model, ``why``)."""
    for trial in trials:
        if not trial.restarted:
            logging.getLogger("scaleml.search").warning(
                "[CV%s] model %s %s", prefix, trial.model_id, why
            )
        trial.restarted = True


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` cut into lists of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]
