"""Where a batch's steps run: at the blocks (the models travel) or at the models (the blocks
travel).

A search chooses per group of models (the search, or one Hyperband bracket) by the measured
sizes of what would travel:

* **Move the models** (``MODELS``, the default for blocks of at least ``MIN_BLOCK_BYTES``):
  each call runs on the worker that holds its block; consecutive calls whose blocks are on
  one worker are one task pinned there (``scaleml.search._pins``: work stealing leaves it
  alone), and the batch's model states go to the next block's worker
  (a few kilobytes for a linear model). No training block leaves its worker, so the bytes
  moved per pass are the states of the models times the calls that change worker, whatever
  the size of the data.
* **Move the blocks** (``BLOCKS``): each model lives on one worker, dealt round-robin, and
  each worker fetches the blocks its models train on, ahead of the steps (one copy per
  worker and block, shared by its models). Per pass that is the training data times
  ``workers - 1``, independent of the models.

A search's ``placement`` parameter (``"models"``, ``"blocks"``) fixes the choice; by default
(``"auto"``) the search chooses how its groups start by the time each way is expected to
take, then each group by the bytes each way would move:

* **Time.** Models that travel in few batches leave workers idle: every batch of a group
  follows the same block order, so batches queue on the worker holding the current block
  while another waits. Modelled as a closed network of ``b`` batches (those of all the
  search's groups, which train at once: Hyperband's brackets keep each other's workers busy)
  visiting ``w`` workers at random, a worker is busy ``b / (b + w - 1)`` of the time (0.8 for
  the tutorial's 10 models in 4 batches on 2 workers; ``benchmarks/placement_model.py``, a
  simulation of the driver's schedule, gives 0.81). Models dealt round-robin keep
  a worker busy ``(n / w) / ceil(n / w)`` of the time, their blocks fetched while the step
  before computes. Moving the blocks sends ``workers - 1`` copies of the training data over
  the network per pass, so it is chosen only where that is at most ``MAX_BLOCK_COPIES``
  (one copy: a two-worker cluster) and it promises at least ``MIN_GAIN`` (20 %) less wall
  time, a margin for what the model leaves out (a network shared with other work, memory
  for the copies). Past two workers the copies grow with the cluster, which is what moving
  the models is for.
* **Bytes.** Moving the models costs ``n_models x state bytes`` per block, moving the blocks
  ``workers x block bytes`` per block (each worker but the holder fetches it). A group that
  moves its models measures the states once its first step has reported (the scheduler's
  sizes of the step's outputs; ``TrialState`` reports the size of its estimator's arrays) and
  switches to moving blocks when ``live models x bytes per state > workers x mean block
  bytes`` (a large ``MLPClassifier`` with many models, say). Blocks smaller than
  ``MIN_BLOCK_BYTES`` always travel: moving them costs less than the extra tasks and state
  hops of following them (a task costs the scheduler about a millisecond, as long as a
  megabyte takes on a gigabit network).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distributed import Client

from scaleml.search._data import SearchData

AUTO = "auto"
MODELS = "models"
BLOCKS = "blocks"
PLACEMENTS = (AUTO, MODELS, BLOCKS)
MIN_BLOCK_BYTES = 2**20
MAX_BLOCK_COPIES = 1
"""Copies of the training data per pass that moving the blocks may send (``workers - 1``)."""
MIN_GAIN = 1.2
"""How much faster moving the blocks must be expected to be, as a ratio of wall times."""
MAX_BATCH = 8
"""The most models trained together in one task."""
BATCHES_PER_WORKER = 2
"""When the models travel, a group's models due the same calls are cut into at least this
many batches per worker (each at most ``MAX_BATCH``): they all start on the same block, and
then follow each other through the blocks' workers, keeping the workers busy."""


class Placement:
    """The blocks of one train/test split: where each lives, how large it is, and how a step
    over them is cut into tasks when the models travel."""

    def __init__(self, client: Client, data: SearchData) -> None:
        self.parts = [xy if isinstance(xy, tuple) else (xy,) for xy in data.train]
        futures = [f for part in self.parts for f in part]
        self.block_bytes: list[int] = []
        sizes = client.nbytes([f.key for f in futures], summary=False)
        self.sizes = {k: int(v) for k, v in sizes.items()}
        for part in self.parts:
            self.block_bytes.append(sum(self.sizes.get(f.key, 0) for f in part))
        self.workers: list[str] = []
        self.homes: list[str | None] = []
        """Per block, the worker holding most of its bytes (when the search began, or when
        a worker last left)."""
        self.refresh(client)

    def refresh(self, client: Client) -> None:
        """Look again where the blocks are, and which workers there are (a worker left)."""
        futures = [f for part in self.parts for f in part]
        who_has = client.who_has(futures)
        self.workers = sorted(client.nthreads())
        self.homes = []
        for part in self.parts:
            held: dict[str, int] = {}
            for future in part:
                for worker in who_has.get(future.key, ()):
                    held[worker] = held.get(worker, 0) + self.sizes.get(future.key, 0)
            self.homes.append(max(sorted(held), key=held.__getitem__) if held else None)

    @property
    def mean_block_bytes(self) -> float:
        """The mean size of a training block."""
        return sum(self.block_bytes) / max(len(self.block_bytes), 1)

    def initial_mode(self, group_sizes: Sequence[int]) -> str:
        """The mode a search's groups of ``group_sizes`` models start with
        (``initial_mode``)."""
        return initial_mode(group_sizes, len(self.workers), self.mean_block_bytes)

    def choose(self, n_models: int, state_bytes: float) -> str:
        """The mode for ``n_models`` live models of ``state_bytes`` each (see the module)."""
        if self.mean_block_bytes < MIN_BLOCK_BYTES:
            return BLOCKS
        moving_models = n_models * state_bytes
        moving_blocks = len(self.workers) * self.mean_block_bytes
        return MODELS if moving_models <= moving_blocks else BLOCKS

    def home(self, block: int) -> str:
        """The worker holding ``block`` (any worker if that is unknown)."""
        return self.homes[block] or self.workers[block % len(self.workers)]

    def segments(self, blocks: Sequence[int]) -> list[tuple[str, list[int]]]:
        """``blocks`` (the blocks of a step's calls, in order) cut into runs of consecutive
        calls whose blocks live on one worker: ``[(worker, [index into blocks])]``."""
        out: list[tuple[str, list[int]]] = []
        for i, block in enumerate(blocks):
            worker = self.home(block)
            if out and out[-1][0] == worker:
                out[-1][1].append(i)
            else:
                out.append((worker, [i]))
        return out


def initial_mode(group_sizes: Sequence[int], workers: int, mean_block_bytes: float) -> str:
    """``MODELS`` unless the blocks are too small to be worth following, or the models of a
    search's groups (``group_sizes``: they train at once) would, traveling, leave so many of
    the ``workers`` idle that moving the blocks is worth its copies (see the module)."""
    if mean_block_bytes < MIN_BLOCK_BYTES:
        return BLOCKS
    if workers - 1 > MAX_BLOCK_COPIES:
        return MODELS
    dealt = dealt_utilization(sum(group_sizes), workers)
    gain = dealt / traveling_utilization(group_sizes, workers)
    return BLOCKS if gain >= MIN_GAIN else MODELS


def follows_blocks(
    placement: str, group_sizes: Sequence[int], workers: int, block_bytes: float
) -> bool:
    """Whether a search of groups of ``group_sizes`` models on blocks of about ``block_bytes``
    will start by following the blocks (so its splits are worth pinning; a group that starts
    by moving blocks never follows them later)."""
    if placement != AUTO:
        return placement == MODELS
    return initial_mode(group_sizes, workers, block_bytes) == MODELS


def traveling_batches(n_models: int, workers: int) -> int:
    """The batches ``n_models`` models due the same calls travel in (``BATCHES_PER_WORKER``)."""
    return min(n_models, max(-(-n_models // MAX_BATCH), BATCHES_PER_WORKER * workers))


def traveling_utilization(group_sizes: Sequence[int], workers: int) -> float:
    """The expected busy fraction of a worker when the models of groups of ``group_sizes``
    travel at once (see the module)."""
    batches = max(1, sum(traveling_batches(n, workers) for n in group_sizes))
    return batches / (batches + workers - 1)


def dealt_utilization(n_models: int, workers: int) -> float:
    """The busy fraction of a worker when ``n_models`` are dealt round-robin to ``workers``
    and the blocks travel."""
    if n_models <= 0 or workers <= 0:
        return 1.0
    return (n_models / workers) / -(-n_models // workers)


def split_evenly(items: Sequence[Any], n_parts: int) -> list[Sequence[Any]]:
    """``items`` cut into ``n_parts`` runs whose sizes differ by at most one (fewer when there
    are fewer items)."""
    n_parts = max(1, min(n_parts, len(items)))
    size, extra = divmod(len(items), n_parts)
    out, start = [], 0
    for k in range(n_parts):
        end = start + size + (k < extra)
        out.append(items[start:end])
        start = end
    return out
