"""Pinning a search's own tasks to their blocks' workers, without touching the cluster's work
stealing.

A task that follows its block must run on the block's worker: work stealing would move a
queued task to any idle worker, fetching the block there (what following the blocks avoids).
Distributed never steals a task with a strict restriction (``workers=[w]``,
``allow_other_workers=False``), so those tasks are pinned that way: the scheduler keeps
balancing and stealing every other task, other users' included, and nothing is switched off
that could be left off if the search, or its client, dies.

A strict restriction to a worker that has died would leave the task waiting for it forever
(and Dask recomputes a lost block or state with its original restrictions), so the search
checks for workers that left (``Unpinner.check``, about once a second) and then loosens the
restrictions of its own tasks, and of the tasks they are computed from, pinned only to
workers that are gone: those tasks, and the recomputations of what was lost, run on any
worker. The function run on the scheduler is
defined inside, so it travels by value: the scheduler needs no scaleml.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Hashable, Sequence
from typing import Any

from distributed import Client, Future, wait

PINNED: dict[str, Any] = {"allow_other_workers": False}
"""``Client.submit``/``persist`` keywords that pin a task to its ``workers``."""


def unpin(client: Client, gone: Collection[str], token: str, keys: Collection[Hashable]) -> int:
    """Loosen the restrictions of one search's tasks (a key containing ``token``, one of
    ``keys``, or what they are computed from) that are pinned only to workers in ``gone``;
    the number loosened."""

    def _unpin(dask_scheduler: Any, gone: list[str], token: str, keys: list[Any]) -> int:
        tasks = dask_scheduler.tasks
        wanted = {k if isinstance(k, str) else tuple(k) for k in keys}
        todo = [ts for k, ts in tasks.items() if k in wanted or (isinstance(k, str) and token in k)]
        seen, stuck, n = set(), {}, 0
        while todo:
            ts = todo.pop()
            if ts.key in seen:
                continue
            seen.add(ts.key)
            todo.extend(ts.dependencies)
            pins = ts.worker_restrictions
            if pins and not ts.loose_restrictions and pins <= set(gone):
                ts.loose_restrictions = True
                n += 1
                if ts.state == "no-worker":
                    stuck[ts.key] = "processing"
        dask_scheduler.transitions(stuck, stimulus_id=f"scaleml-unpin-{time.time()}")
        return n

    return client.run_on_scheduler(_unpin, gone=sorted(gone), token=token, keys=list(keys))


class Unpinner:
    """Watches the workers a search pins tasks to, and unpins its tasks from those that
    leave (see the module)."""

    def __init__(self, client: Client, token: str, keys: Sequence[Hashable] = ()) -> None:
        self.client = client
        self.token = token
        self.keys = list(keys)
        self.workers = set(client.nthreads())

    def check(self) -> set[str]:
        """Unpin from the workers that left since the last check; those workers."""
        alive = set(self.client.nthreads())
        gone = self.workers - alive
        if gone:
            unpin(self.client, gone, self.token, self.keys)
        self.workers = alive
        return gone


def wait_pinned(client: Client, futures: Sequence[Future], token: str, every: float = 1.0) -> None:
    """``distributed.wait`` for ``futures`` (pinned, keys containing ``token`` or theirs),
    unpinning them from workers that die meanwhile."""
    unpinner = Unpinner(client, token, [f.key for f in futures])
    while True:
        try:
            wait(futures, timeout=every)
            return
        except TimeoutError:
            unpinner.check()
