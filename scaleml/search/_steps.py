"""Submitting the driver's work as tasks: the models of a group, and each batch's step.

Where a step runs is its group's placement (``scaleml.search._placement``): when the models
travel, a step is one task per run of consecutive calls whose blocks live on one worker,
pinned there (strictly, so work stealing leaves them alone: ``scaleml.search._pins``), each
handing the batch's states to the next; when the blocks travel, it runs on
the batch's worker, whose missing blocks are fetched ahead (``Prefetcher``), with one task per
call of a one-round step and one task for a step of several rounds. Either way the task that
ends the step scores the models and sends the batch's one report.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from distributed import Client, Future

from scaleml.search._batches import Batch, Group
from scaleml.search._data import Prefetcher, SearchData
from scaleml.search._pins import PINNED, Unpinner, lost_tasks
from scaleml.search._placement import AUTO, BLOCKS, MODELS, Placement
from scaleml.search._tasks import create_models, fit_models, fit_rounds


class Steps:
    """Submits models and steps for one search; see the module docstring."""

    def __init__(
        self,
        client: Client,
        data: Mapping[Hashable, SearchData],
        estimator: Any,
        *,
        fit_params: dict[str, Any],
        scorer: Callable[[Any, Any, Any], float],
        token: str,
        topic: str,
        placement: str = AUTO,
    ) -> None:
        self.client = client
        self.data = dict(data)
        self.estimator = estimator
        self.fit_params = fit_params
        self.scorer = scorer
        self.token = token
        self.topic = topic
        self.prefetchers = {k: Prefetcher(client, d, token) for k, d in self.data.items()}
        self.placements = {k: Placement(client, d) for k, d in self.data.items()}
        self.placement = placement
        """``AUTO`` (each group chooses), ``MODELS`` or ``BLOCKS`` (every group)."""
        self.modes: dict[int, str] = {}
        """Per group (``id``), whether its models or its blocks travel."""
        self.group_sizes: list[int] = []
        """The models of each of the search's groups (``expect``)."""
        self.unpinner = Unpinner(
            client, token, [f.key for d in self.data.values() for f in d.futures]
        )

    def check_workers(self) -> set[str]:
        """If a worker left: unpin this search's tasks from it (they, and the recomputations
        of what it held, run elsewhere), and look again where the blocks are. The keys of the
        tasks it was running or whose results were lost with it."""
        gone = self.unpinner.check()
        if not gone:
            return set()
        for placement in self.placements.values():
            placement.refresh(self.client)
        return lost_tasks(self.client, gone)

    def expect(self, groups: Sequence[Group]) -> None:
        """Say which groups will train at once (the placement is chosen for all of them)."""
        self.group_sizes = [len(g.models) for g in groups]

    def mode(self, group: Group) -> str:
        """``MODELS`` or ``BLOCKS``: what travels for ``group``'s steps now."""
        mode = self.modes.get(id(group))
        if mode is None:
            if self.placement == AUTO:
                mode = self.placements[group.split].initial_mode(self.group_sizes)
            else:
                mode = self.placement
            self.modes[id(group)] = mode
        return mode

    def measure(self, group: Group, states: list[Future], n_models: int, n_live: int) -> str:
        """Choose ``group``'s mode from the sizes of its models' states after their first
        step (``states`` hold ``n_models`` models; ``n_live`` will train on)."""
        if self.placement == AUTO and self.mode(group) == MODELS and states and n_models:
            sizes = self.client.nbytes([f.key for f in states], summary=False)
            per_model = sum(int(v) for v in sizes.values()) / n_models
            self.modes[id(group)] = self.placements[group.split].choose(n_live, per_model)
        return self.mode(group)

    def create(
        self, group: Group, model_ids: Sequence[Hashable], home: str, first_block: int
    ) -> Future:
        """A fresh clone per model, on ``home``, or where ``first_block`` (the block of the
        models' first call) lives (pinned there) when the models travel."""
        where: dict[str, Any] = {"allow_other_workers": True}
        if self.mode(group) == MODELS:
            home = self.placements[group.split].home(first_block)
            where = PINNED
        return self.client.submit(
            create_models,
            self.estimator,
            {k: group.models[k] for k in model_ids},
            key=f"create_models-{self.token}-{uuid.uuid4().hex[:6]}",
            workers=[home],
            **where,
        )

    def submit(self, batch: Batch, sources: list[Future] | None = None, priority: int = 0) -> None:
        """Chain ``calls`` calls from ``sources``, by default the models' last completed
        states; the last call scores. Sets ``batch.batch_id`` and ``batch.state``."""
        batch.batch_id = f"{self.token}-{uuid.uuid4().hex[:10]}"
        if sources is None:
            sources = list({t.source.key: t.source for t in batch.trials}.values())
        if self.mode(batch.group) == MODELS:
            self._follow_blocks(batch, sources, priority)
        else:
            self._fetch_blocks(batch, sources, priority)

    def forget_prefetches(self, batch: Batch) -> None:
        """Let later steps fetch ``batch``'s blocks again (the copies may be gone by then)."""
        self.prefetchers[batch.group.split].forget(batch.prefetches)
        batch.prefetches = {}

    def _blocks(self, batch: Batch) -> list[int]:
        order = batch.trials[0].order
        return [order[call] for call in range(batch.start, batch.end)]

    def _follow_blocks(self, batch: Batch, sources: list[Future], priority: int) -> None:
        """The models travel: a task per run of blocks on one worker, pinned there."""
        data = self.data[batch.group.split]
        model_ids = [t.model_id for t in batch.trials]
        blocks = self._blocks(batch)
        segments = self.placements[batch.group.split].segments(blocks)
        state: Future | None = None
        for n, (worker, indices) in enumerate(segments):
            state = self.client.submit(
                fit_rounds,
                sources if state is None else [state],
                model_ids,
                [data.train[blocks[i]] for i in indices],
                self.fit_params,
                self.scorer,
                data.test_on(worker),
                self.topic,
                batch.batch_id,
                batch.calls,
                indices[0],
                n == len(segments) - 1,
                key=f"partial_fit-{batch.batch_id}-{n}",
                workers=[worker],
                priority=priority,
                **PINNED,
            )
        batch.state = state

    def _fetch_blocks(self, batch: Batch, sources: list[Future], priority: int) -> None:
        """The blocks travel: every task on the batch's worker, its blocks fetched ahead."""
        first = batch.trials[0]
        model_ids = [t.model_id for t in batch.trials]
        where = {"workers": [first.worker], "allow_other_workers": True, "priority": priority}
        data = self.data[batch.group.split]
        blocks = self._blocks(batch)
        for block in blocks:
            self.prefetchers[batch.group.split].fetch(batch.prefetches, block, first.worker)
        xys = [data.train[block] for block in blocks]
        # Calls before the last one of a one-round step: a task each.
        chained = len(xys) - 1 if batch.rounds == 1 else 0
        state = None
        for i in range(chained):
            args = (sources if state is None else [state], model_ids, xys[i], self.fit_params)
            key = f"partial_fit-{batch.batch_id}-{i}"
            state = self.client.submit(fit_models, *args, key=key, **where)
        batch.state = self.client.submit(
            fit_rounds,
            sources if state is None else [state],
            model_ids,
            xys[chained:],
            self.fit_params,
            self.scorer,
            data.test_on(first.worker),
            self.topic,
            batch.batch_id,
            batch.calls if batch.rounds > 1 else 1,
            key=f"partial_fit-{batch.batch_id}-{chained}",
            **where,
        )


__all__ = ["BLOCKS", "MODELS", "Steps"]
