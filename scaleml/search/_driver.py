"""The driver: runs the ``partial_fit`` calls a policy asks for, on the cluster.

Synchronous, on the public ``distributed`` API: ``Client.submit`` and Dask's structured events
(``Worker.log_event`` / ``Client.subscribe_topic``). Each model lives on one worker, dealt
round-robin at creation. The models of a group that live on the same worker and are due the
same calls travel together as a *batch* (at most ``_MAX_BATCH`` models): a *step* of ``k``
calls is ``k`` chained tasks, each training every model of the batch on the same block, and
the last one also scores them on that worker's copy of the test set and sends a small report
(scores, calls, timings) as one event, which the scheduler pushes to the client. One task per
block for the batch instead of one per model divides the scheduler's, the workers' and the
client's per-task cost by the batch size. No result is fetched, no model or data block ever
comes back to the driver; only training blocks move between workers.

The tasks are submitted to the batch's worker with a loose restriction (if that worker dies,
they run elsewhere). A step's training blocks that another worker holds are fetched ahead, by a
small task that depends on them, while the worker still computes the step before. The models of
a group visit the blocks in one shared seeded order, dask-ml's, so call ``k`` of every model
trains on the same block and an integer ``random_state`` trains the models dask-ml would.

Models are grouped (a whole search, or one Hyperband bracket): when every model of a group has
reported, its policy decides that group's next steps. When a batch starts whose models got the
same number of calls the last two times, the driver guesses they will get that many again and
submits that step too, chained on the batch, at low priority: kept if the decision agrees for
all its models, cancelled if not. The scheduler has the guess before the batch ends and starts
it as soon as the batch ends, so no worker waits for the round trip through the client at the
end of a round, not even the one that finishes the round last. At most ``max_in_flight``
batches are submitted at once (guesses aside); a model's calls stay sequential.

Resilience: a batch lost with a worker is recomputed by Dask from its lineage (every call
works on a copy, so a re-run gives the same models). The re-run tasks report again, so the
driver learns which models were hit and marks their next records ``restarted``. A step that
failed because its worker kept dying (``KilledWorker``) is submitted again from the models'
last completed states.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from distributed import Client, Future
from distributed.scheduler import KilledWorker

from scaleml.search._batches import Batch, BlockOrder, Group, Trial, chunks
from scaleml.search._data import SearchData
from scaleml.search._history import History
from scaleml.search._tasks import (
    create_models,
    estimator_of,
    fit_and_score_models,
    fit_models,
    hold,
    report,
)

logger = logging.getLogger("scaleml.search")
_MAX_BATCH = 8
_MAX_STEP_RETRIES = 2
_POLL_SECONDS = 1.0
_ERROR_CHECK_SECONDS = 0.2


class Driver:
    """Runs groups of models to the end of their policies; see the module docstring."""

    def __init__(
        self,
        client: Client,
        data: SearchData,
        estimator: Any,
        *,
        fit_params: dict[str, Any],
        scorer: Callable[[Any, Any, Any], float],
        history: History,
        max_in_flight: int,
        log_every: int = 0,
        prefix: str = "",
    ) -> None:
        self.client = client
        self.data = data
        self.estimator = estimator
        self.fit_params = fit_params
        self.scorer = scorer
        self.history = history
        self.max_in_flight = max_in_flight
        self.log_every = log_every
        self.prefix = prefix
        self.token = uuid.uuid4().hex[:8]
        self.topic = f"scaleml-search-{self.token}"
        self.trials: dict[Hashable, Trial] = {}
        self._queue: deque[Batch] = deque()
        self._in_flight: dict[str, Batch] = {}
        self._speculative: dict[str, Batch] = {}
        # The models of each finished step; not its state, which would keep every state alive.
        self._done: dict[str, list[Trial]] = {}
        self._holders: list[frozenset[str]] = []
        self._prefetches: dict[tuple[int, str], Future] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._rounds = 0
        self._errors_checked = 0.0
        self._started = 0.0

    def run(self, groups: Sequence[Group]) -> None:
        """Train every group until its policy stops it; raise the first task error."""
        self._started = time.perf_counter()
        logger.info("[CV%s] creating %d models", self.prefix, sum(len(g.models) for g in groups))
        self.client.subscribe_topic(self.topic, self._on_event)
        try:
            self._holders = self._block_holders()
            self._create(groups)
            self._fill()
            while self._in_flight:
                try:
                    report_ = self._events.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    self._poll()
                else:
                    self._on_report(report_)
                self._check_errors()
                self._fill()
        finally:
            self.client.unsubscribe_topic(self.topic)
            pending = [*self._in_flight.values(), *self._speculative.values()]
            if pending:
                self.client.cancel([b.state for b in pending if b.state is not None])

    def fitted_model(self, model_id: Hashable) -> Any:
        """The fitted model ``model_id`` as it is now, fetched from its worker."""
        trial = self.trials[model_id]
        return self.client.submit(estimator_of, trial.source, model_id, pure=False).result()

    def release(self) -> None:
        """Forget every model state future held by the driver."""
        for trial in self.trials.values():
            trial.source.release()

    # -- events (the handlers run in other threads: they only enqueue) -----------------------

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        self._events.put(event[1])

    def _check_errors(self) -> None:
        """Every so often, look for failed steps (they send no report). Polled rather than
        watched with a done-callback per step: each callback costs the client a thread-pool
        hand-off (18% of the client process's GIL time in a profile of the tutorial search)."""
        now = time.monotonic()
        if now - self._errors_checked < _ERROR_CHECK_SECONDS:
            return
        self._errors_checked = now
        for batch in list(self._in_flight.values()):
            if batch.state is not None and batch.state.status == "error":
                self._on_failed(batch)

    # -- submitting --------------------------------------------------------------------------

    def _create(self, groups: Sequence[Group]) -> None:
        n_blocks = len(self.data.train)
        workers = sorted(self.data.tests)
        n_models = 0
        for group in groups:
            order = BlockOrder(n_blocks, group.seed)
            group.live = list(group.models)
            group.waiting = set(group.models)
            group.info = {k: [] for k in group.models}
            homes: dict[str, list[Hashable]] = {}
            for model_id in group.models:
                homes.setdefault(workers[n_models % len(workers)], []).append(model_id)
                n_models += 1
            for home, model_ids in homes.items():
                for chunk in chunks(model_ids, _MAX_BATCH):
                    source = self.client.submit(
                        create_models,
                        self.estimator,
                        {k: group.models[k] for k in chunk},
                        key=f"create_models-{self.token}-{uuid.uuid4().hex[:6]}",
                        workers=[home],
                        allow_other_workers=True,
                    )
                    for model_id in chunk:
                        self.trials[model_id] = Trial(model_id, group, order, home, source)
            self._enqueue([(self.trials[k], 1) for k in group.models])

    def _enqueue(self, due: Sequence[tuple[Trial, int]]) -> None:
        """Queue steps for models due some calls, batched by worker, start and calls."""
        batches: dict[tuple[str, int, int], list[Trial]] = {}
        for trial, calls in due:
            batches.setdefault((trial.worker, trial.calls_done, calls), []).append(trial)
        for (_, start, calls), trials in batches.items():
            for chunk in chunks(trials, _MAX_BATCH):
                self._queue.append(Batch(chunk, start, calls))

    def _block_holders(self) -> list[frozenset[str]]:
        """The workers that hold each training block (all its parts)."""
        parts = [xy if isinstance(xy, tuple) else (xy,) for xy in self.data.train]
        who_has = self.client.who_has([f for part in parts for f in part])
        return [frozenset.intersection(*(frozenset(who_has[f.key]) for f in p)) for p in parts]

    def _prefetch(self, batch: Batch, block: int, worker: str) -> None:
        """Have ``worker`` fetch ``block`` ahead of ``batch`` unless it holds it already."""
        if worker in self._holders[block]:
            return
        where = (block, worker)
        future = self._prefetches.get(where)
        if future is None:
            future = self.client.submit(
                hold,
                self.data.train[block],
                key=f"prefetch-{self.token}-{uuid.uuid4().hex[:10]}",
                workers=[worker],
                allow_other_workers=True,
                priority=1,
            )
            self._prefetches[where] = future
        batch.prefetches[where] = future

    def _fill(self) -> None:
        while self._queue and len(self._in_flight) < self.max_in_flight:
            batch = self._queue.popleft()
            self._submit(batch)
            self._start(batch)

    def _start(self, batch: Batch) -> None:
        self._in_flight[batch.batch_id] = batch
        if batch.report is not None:  # a speculative step that already reported
            self._events.put(batch.report)
        if all(t.decided[-2:] == [batch.calls] * 2 for t in batch.trials):
            self._guess_next(batch)

    def _guess_next(self, batch: Batch) -> None:
        """Submit the step after ``batch``, guessing its models get the same calls again."""
        assert batch.state is not None
        guess = Batch(batch.trials, batch.start + batch.calls, batch.calls)
        self._submit(guess, sources=[batch.state], priority=-1)
        self._speculative[guess.batch_id] = guess
        for trial in batch.trials:
            trial.speculative = guess

    def _drop_guess(self, guess: Batch) -> None:
        del self._speculative[guess.batch_id]
        for where in guess.prefetches:
            self._prefetches.pop(where, None)
        for trial in guess.trials:
            trial.speculative = None
        assert guess.state is not None
        self.client.cancel([guess.state])

    def _submit(self, batch: Batch, sources: list[Future] | None = None, priority: int = 0) -> None:
        """Chain ``calls`` calls from ``sources``, by default the models' last completed
        states; the last call scores."""
        batch.batch_id = f"{self.token}-{uuid.uuid4().hex[:10]}"
        first = batch.trials[0]
        model_ids = [t.model_id for t in batch.trials]
        if sources is None:
            sources = list({t.source.key: t.source for t in batch.trials}.values())
        where = {"workers": [first.worker], "allow_other_workers": True, "priority": priority}
        state = None
        for i in range(batch.calls):
            block = first.order[batch.start + i]
            self._prefetch(batch, block, first.worker)
            xy = self.data.train[block]
            key = f"partial_fit-{batch.batch_id}-{i}"
            args = (sources if state is None else [state], model_ids, xy, self.fit_params)
            if i < batch.calls - 1:
                state = self.client.submit(fit_models, *args, key=key, **where)
            else:
                test = self.data.test_on(first.worker)
                state = self.client.submit(
                    fit_and_score_models,
                    *args,
                    self.scorer,
                    test,
                    self.topic,
                    batch.batch_id,
                    key=key,
                    **where,
                )
        batch.state = state

    # -- receiving ---------------------------------------------------------------------------

    def _on_report(self, result: dict[str, Any]) -> None:
        batch_id = result["batch_id"]
        if batch_id in self._in_flight:
            self._reported(self._in_flight.pop(batch_id), result)
        elif batch_id in self._speculative:
            self._speculative[batch_id].report = result
        elif batch_id in self._done:
            # A finished step ran again: its output was lost with a worker and recomputed.
            for trial in self._done[batch_id]:
                if not trial.restarted:
                    logger.warning(
                        "[CV%s] model %s was lost with a worker and is recomputed",
                        self.prefix,
                        trial.model_id,
                    )
                trial.restarted = True

    def _on_failed(self, batch: Batch) -> None:
        assert batch.state is not None
        error = batch.state.exception()
        if not isinstance(error, KilledWorker) or batch.retries >= _MAX_STEP_RETRIES:
            batch.state.result()  # raises the task's own error
        # Its worker kept dying: start the step again from the last completed states, which
        # Dask recomputes from their lineage if they were lost too.
        del self._in_flight[batch.batch_id]
        guesses = {id(g): g for t in batch.trials if (g := t.speculative) is not None}
        for guess in guesses.values():
            self._drop_guess(guess)
        for trial in batch.trials:
            trial.restarted = True
            logger.warning(
                "[CV%s] model %s lost its worker; restarting", self.prefix, trial.model_id
            )
        again = Batch(batch.trials, batch.start, batch.calls, retries=batch.retries + 1)
        self._submit(again)
        self._start(again)

    def _poll(self) -> None:
        """No event for a while: fetch the reports of finished steps whose event is missing."""
        for batch in list(self._in_flight.values()):
            if batch.state is None or batch.state.status != "finished":
                continue
            batch.finished_polls += 1
            if batch.finished_polls >= 2 and batch.batch_id in self._in_flight:
                result = self.client.submit(
                    report, batch.state, batch.batch_id, pure=False
                ).result()
                self._reported(self._in_flight.pop(batch.batch_id), result)

    def _reported(self, batch: Batch, result: dict[str, Any]) -> None:
        assert batch.state is not None
        group = batch.group
        self._done[batch.batch_id] = batch.trials
        for where in batch.prefetches:
            self._prefetches.pop(where, None)
        batch.prefetches = {}
        elapsed = time.perf_counter() - self._started
        reports = {r["model_id"]: r for r in result["models"]}
        for trial in batch.trials:
            model_report = reports[trial.model_id]
            restarted = trial.restarted
            trial.source, trial.restarted = batch.state, False
            record = {
                "model_id": trial.model_id,
                "params": group.models[trial.model_id],
                "partial_fit_calls": model_report["partial_fit_calls"],
                "partial_fit_time": model_report["partial_fit_time"],
                "score": model_report["score"],
                "score_time": model_report["score_time"],
                "elapsed_wall_time": elapsed,
                "restarted": restarted,
                **group.extra,
            }
            group.info[trial.model_id].append(record)
            self.history.append(record)
            group.waiting.discard(trial.model_id)
        if not group.waiting:
            self._decide(group)

    def _decide(self, group: Group) -> None:
        info = {k: group.info[k] for k in group.live}
        self._log_round(info)
        decision = group.policy(info, group.decisions)
        group.decisions.append(decision)
        unknown = set(decision.calls) - set(info)
        if unknown:
            raise RuntimeError(f"the policy named models that are not live: {sorted(unknown)}")
        group.live = [k for k in info if k in decision.calls]
        calls = {k: int(decision.calls.get(k, 0)) for k in info}
        for model_id, n_calls in calls.items():
            self.trials[model_id].decided.append(n_calls)
            if n_calls > 0:
                group.waiting.add(model_id)
        guesses = {id(g): g for k in info if (g := self.trials[k].speculative) is not None}
        kept: set[Hashable] = set()
        for guess in guesses.values():
            if all(calls[t.model_id] == guess.calls for t in guess.trials):
                del self._speculative[guess.batch_id]
                for trial in guess.trials:
                    trial.speculative = None
                kept.update(t.model_id for t in guess.trials)
                self._start(guess)
            else:
                self._drop_guess(guess)
        self._enqueue([(self.trials[k], n) for k, n in calls.items() if n > 0 and k not in kept])

    def _log_round(self, info: dict[Hashable, list[dict[str, Any]]]) -> None:
        self._rounds += 1
        if not self.log_every or self._rounds % self.log_every:
            return
        best = max((records[-1] for records in info.values()), key=lambda r: r["score"])
        logger.info(
            "[CV%s] validation score of %0.4f received after %d partial_fit calls",
            self.prefix,
            best["score"],
            best["partial_fit_calls"],
        )
