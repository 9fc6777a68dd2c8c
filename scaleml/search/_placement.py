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

The choice compares the two per pass: moving the models costs ``n_models x state bytes``
per block, moving the blocks ``workers x block bytes`` per block (each worker but the holder
fetches it). A group starts by moving the models (the first call of every model runs at the
first block, where the models are created); once its first step has reported, the states'
sizes are measured (the scheduler's sizes of the step's outputs; ``TrialState`` reports the
size of its estimator's arrays) and the group switches to moving blocks when
``live models x bytes per state > workers x mean block bytes`` (a large ``MLPClassifier``
with many models, say). Blocks smaller than ``MIN_BLOCK_BYTES`` always travel: moving them
costs less than the extra tasks and state hops of following them (a task costs the
scheduler about a millisecond, as long as a megabyte takes on a gigabit network).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distributed import Client

from scaleml.search._data import SearchData

MODELS = "models"
BLOCKS = "blocks"
MIN_BLOCK_BYTES = 2**20


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

    def initial_mode(self) -> str:
        """``MODELS`` unless the blocks are too small to be worth following."""
        return BLOCKS if self.mean_block_bytes < MIN_BLOCK_BYTES else MODELS

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
