"""The driver: runs the ``partial_fit`` calls a policy asks for, on the cluster.

Synchronous, on the public ``distributed`` API: ``Client.submit`` and Dask's structured events
(``Worker.log_event`` / ``Client.subscribe_topic``). Each model lives on one worker, dealt
round-robin. The models of a group on one worker that are due the same calls travel together
as a *batch* (at most ``_MAX_BATCH``): a *step* of ``k`` calls is ``k`` chained tasks, each
training every model of the batch on the same block; the last also scores them on that
worker's copy of the test set and sends one small report event (scores, calls, timings),
which the scheduler pushes to the client. No model or data block comes back to the driver.
Tasks go to the batch's worker with a loose restriction (if it dies, they run elsewhere); the
blocks a step needs are fetched to it ahead, while it computes the step before. A group's
models visit the blocks in one shared seeded order, dask-ml's, so an integer ``random_state``
trains the models dask-ml would.

Models are grouped (a whole search, or one Hyperband bracket): when every model of a group has
reported, its policy decides that group's next steps. When those decisions are known ahead
(``Group.lookahead``: they do not depend on the scores), one task runs several steps
(*rounds*), scoring after each, up to ``_MAX_ROUNDS``. When a batch starts whose models got the
same calls the last two times (or whose next decision is known), the driver also submits the
next step, chained on it at low priority: kept if the decision agrees, cancelled if not. The
scheduler starts it as soon as the batch ends, without a round trip through the client. At
most ``max_in_flight`` batches are submitted at once (guesses aside).

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
from scaleml.search._data import Prefetcher, SearchData
from scaleml.search._history import History
from scaleml.search._tasks import (
    create_models,
    estimator_of,
    fit_models,
    fit_rounds,
    report,
)

logger = logging.getLogger("scaleml.search")
_MAX_BATCH = 8
_MAX_ROUNDS = 8
_MAX_ROUND_ROWS = 1_000_000
"""A task of several rounds holds at most this many rows of training blocks."""
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
        self._max_rounds = max(
            1, min(_MAX_ROUNDS, _MAX_ROUND_ROWS // max(data.train_rows, default=1))
        )
        self._prefetcher = Prefetcher(client, data, self.token)
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
            self._enqueue([(self.trials[k], 1) for k in group.models], ahead=False)

    def _enqueue(self, due: Sequence[tuple[Trial, int]], *, ahead: bool = True) -> None:
        """Queue steps for models due some calls, batched by worker, start and calls; with
        ``ahead``, as many rounds as the group's decisions are known ahead."""
        batches: dict[tuple[str, int, int], list[Trial]] = {}
        for trial, calls in due:
            batches.setdefault((trial.worker, trial.calls_done, calls), []).append(trial)
        for (_, start, calls), trials in batches.items():
            rounds = self._rounds_from(trials[0].group, start) if ahead else 1
            for chunk in chunks(trials, _MAX_BATCH):
                self._queue.append(Batch(chunk, start, calls, rounds))

    def _rounds_from(self, group: Group, start: int) -> int:
        """Rounds of a step from ``start`` calls: several where the decisions are known."""
        if group.lookahead is None:
            return 1
        return max(1, min(self._max_rounds, group.lookahead(start)))

    def _fill(self) -> None:
        while self._queue and len(self._in_flight) < self.max_in_flight:
            batch = self._queue.popleft()
            self._submit(batch)
            self._start(batch)

    def _start(self, batch: Batch) -> None:
        self._in_flight[batch.batch_id] = batch
        if batch.report is not None:  # a speculative step that already reported
            self._events.put(batch.report)
        group = batch.group
        if group.lookahead is not None and batch.trials[0].decided:
            # The decisions are known: a guess only when there is another step.
            if group.lookahead(batch.end) > 0:
                self._guess_next(batch)
        elif all(t.decided[-2:] == [batch.calls] * 2 for t in batch.trials):
            self._guess_next(batch)

    def _guess_next(self, batch: Batch) -> None:
        """Submit the step after ``batch``, guessing its models get the same calls again."""
        assert batch.state is not None
        rounds = self._rounds_from(batch.group, batch.end)
        guess = Batch(batch.trials, batch.end, batch.calls, rounds)
        self._submit(guess, sources=[batch.state], priority=-1)
        self._speculative[guess.batch_id] = guess
        for trial in batch.trials:
            trial.speculative = guess

    def _drop_guess(self, guess: Batch) -> None:
        del self._speculative[guess.batch_id]
        self._forget_prefetches(guess)
        for trial in guess.trials:
            trial.speculative = None
        assert guess.state is not None
        self.client.cancel([guess.state])

    def _submit(self, batch: Batch, sources: list[Future] | None = None, priority: int = 0) -> None:
        """Chain ``calls`` calls from ``sources``, by default the models' last completed
        states; the last call scores. A batch of several rounds is one task."""
        batch.batch_id = f"{self.token}-{uuid.uuid4().hex[:10]}"
        first = batch.trials[0]
        model_ids = [t.model_id for t in batch.trials]
        if sources is None:
            sources = list({t.source.key: t.source for t in batch.trials}.values())
        where = {"workers": [first.worker], "allow_other_workers": True, "priority": priority}
        blocks = [first.order[call] for call in range(batch.start, batch.end)]
        for block in blocks:
            self._prefetcher.fetch(batch.prefetches, block, first.worker)
        xys = [self.data.train[block] for block in blocks]
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
            self.data.test_on(first.worker),
            self.topic,
            batch.batch_id,
            batch.calls if batch.rounds > 1 else 1,
            key=f"partial_fit-{batch.batch_id}-{chained}",
            **where,
        )

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
        again = Batch(batch.trials, batch.start, batch.calls, batch.rounds, batch.retries + 1)
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
        self._forget_prefetches(batch)
        elapsed = time.perf_counter() - self._started
        reports = {r["model_id"]: [*r["earlier"], r] for r in result["models"]}
        for round_ in range(batch.rounds):
            for trial in batch.trials:
                steps = reports[trial.model_id]
                step, last = steps[round_], steps[-1]
                earlier = group.info[trial.model_id]
                # Earlier rounds: as long before the report as the worker saw, never before
                # the model's previous record (reports arrive with different delays).
                when = elapsed - (last["finished_at"] - step["finished_at"])
                if earlier:
                    when = max(when, earlier[-1]["elapsed_wall_time"])
                record = {
                    "model_id": trial.model_id,
                    "params": group.models[trial.model_id],
                    "partial_fit_calls": step["partial_fit_calls"],
                    "partial_fit_time": step["partial_fit_time"],
                    "score": step["score"],
                    "score_time": step["score_time"],
                    "elapsed_wall_time": when,
                    "restarted": trial.restarted,
                    **group.extra,
                }
                trial.restarted = False
                group.info[trial.model_id].append(record)
                self.history.append(record)
        for trial in batch.trials:
            trial.source = batch.state
            group.waiting.discard(trial.model_id)
        if not group.waiting:
            self._decide(group)

    def _forget_prefetches(self, batch: Batch) -> None:
        self._prefetcher.forget(batch.prefetches)
        batch.prefetches = {}

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
            rounds = self._rounds_from(group, guess.start)
            if guess.rounds == rounds and all(
                calls[t.model_id] == guess.calls for t in guess.trials
            ):
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
