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
looks at the workers about once a second (``Unpinner.check``) and, when they changed (and
every ``SWEEP_SECONDS`` anyway: a task may have been pinned, from a stale view, to a worker
already gone), loosens the restrictions of its own tasks, and of the tasks they are computed
from, pinned only to workers the scheduler no longer has: those tasks, and the
recomputations of what was lost, run on any worker. The function run on the scheduler is
defined inside, so it travels by value: the scheduler needs no scaleml.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Hashable, Sequence
from typing import Any

from distributed import Client, Future, wait

PINNED: dict[str, Any] = {"allow_other_workers": False}
"""``Client.submit``/``persist`` keywords that pin a task to its ``workers``."""


SWEEP_SECONDS = 10.0


def unpin(client: Client, token: str, keys: Collection[Hashable]) -> int:
    """Loosen the restrictions of one search's tasks (a key containing ``token``, one of
    ``keys``, or what they are computed from) that are pinned only to workers the scheduler
    no longer has; the number loosened."""

    def _unpin(dask_scheduler: Any, token: str, keys: list[Any]) -> int:
        tasks = dask_scheduler.tasks
        alive = set(dask_scheduler.workers)
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
            if not pins or pins & alive:
                continue
            if not ts.loose_restrictions:
                ts.loose_restrictions = True
                n += 1
            if ts.state == "no-worker":  # waiting for a worker that is gone: not any more
                stuck[ts.key] = "processing"
        dask_scheduler.transitions(stuck, stimulus_id=f"scaleml-unpin-{time.time()}")
        return n

    return client.run_on_scheduler(_unpin, token=token, keys=list(keys))


def lost_tasks(client: Client, gone: Collection[str]) -> set[str]:
    """The keys of the tasks that the workers ``gone`` were running, or whose results only
    they held (Dask runs them again where they are still needed), as the scheduler's
    ``remove-worker`` events name them."""
    lost: set[str] = set()
    for address in gone:
        for _, event in client.get_events(address):
            if isinstance(event, dict) and event.get("action") == "remove-worker":
                for field in ("processing-tasks", "lost-computed-tasks"):
                    lost.update(str(key) for key in event.get(field, ()))
    return lost


class Unpinner:
    """Watches the workers a search pins tasks to, and unpins its tasks from those that
    leave (see the module)."""

    def __init__(
        self,
        client: Client,
        token: str,
        keys: Sequence[Hashable] = (),
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self.client = client
        self.token = token
        self.keys = list(keys)
        self.sweep_seconds = sweep_seconds
        self.workers = set(client.nthreads())
        self._swept = -float("inf")  # the first check sweeps: a worker may be gone already

    def check(self) -> set[str]:
        """Unpin from the workers that are gone (see the module); the workers that left since
        the last check."""
        alive = set(self.client.nthreads())
        gone = self.workers - alive
        now = time.monotonic()
        if alive != self.workers or now - self._swept >= self.sweep_seconds:
            unpin(self.client, self.token, self.keys)
            self._swept = now
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
