"""The driver: runs the ``partial_fit`` calls a policy asks for, on the cluster.

Synchronous, on the public ``distributed`` API: ``Client.submit`` and Dask's structured events
(``Worker.log_event`` / ``Client.subscribe_topic``). The models of a group that are due the same
calls travel together as a *batch* (at most ``MAX_BATCH``): a *step* of ``k`` calls trains every
model of the batch on the same blocks; its last task also scores them on the copy of the test
set of the worker it runs on and sends one small report event (scores, calls, timings), which
the scheduler pushes to the client. No model or data block comes back to the driver. Where the
tasks run (``scaleml.search._placement``, submitted by ``scaleml.search._steps``): at the
blocks, the batch's model states traveling from the worker of one block to the next (then a
group's models are cut into at least ``BATCHES_PER_WORKER`` batches per worker, which follow
each other through the workers); or, for small blocks, large models, or few models on two
workers, on the batch's own worker (models dealt round-robin), which fetches the blocks ahead
while it computes the step before. Tasks carry a loose restriction or, when they follow the
blocks, a strict one that work stealing respects, loosened if their worker dies
(``scaleml.search._pins``): either way a task runs elsewhere if its worker dies. A group's
models visit the blocks in one shared seeded order, dask-ml's, so an integer ``random_state``
trains the models dask-ml would.

Models are grouped (a whole search, or one Hyperband bracket): when every model of a group has
reported, its policy decides that group's next steps. When those decisions are known ahead
(``Group.lookahead``: they do not depend on the scores), one step runs several rounds,
scoring after each, up to ``_MAX_ROUNDS``. When a batch starts whose models got the
same calls the last two times (or whose next decision is known), the driver also submits the
next step, chained on it at low priority: kept if the decision agrees, cancelled if not. The
scheduler starts it as soon as the batch ends, without a round trip through the client. At
most ``max_in_flight`` batches are submitted at once (guesses aside).

Resilience: a batch lost with a worker is recomputed by Dask from its lineage (every call
works on a copy, so a re-run gives the same models). The re-run tasks report again, and the
scheduler's ``remove-worker`` event names the tasks of steps in flight that were running on
the worker or whose results it held, so the driver learns which models were hit and marks
their next records ``restarted``. A step that
failed because its worker kept dying (``KilledWorker``) is submitted again from the models'
last completed states.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from distributed import Client
from distributed.scheduler import KilledWorker

from scaleml.errors import mark_model_error
from scaleml.search._batches import Batch, BlockOrder, Group, Trial, chunks, mark_restarted
from scaleml.search._data import SearchData
from scaleml.search._history import History, step_record
from scaleml.search._placement import AUTO, MAX_BATCH, MODELS, split_evenly, traveling_batches
from scaleml.search._progress import log_rounds, progress
from scaleml.search._steps import Steps
from scaleml.search._tasks import estimator_of, report

logger = logging.getLogger("scaleml.search")
_MAX_ROUNDS = 8
_MAX_ROUND_ROWS = 1_000_000
"""A task of several rounds holds at most this many rows of training blocks."""
_MAX_STEP_RETRIES = 2
_POLL_SECONDS = 1.0
_ERROR_CHECK_SECONDS = 0.2
_RECOMPUTED = "was lost with a worker and is recomputed"


class Driver:
    """Runs groups of models to the end of their policies; see the module docstring."""

    def __init__(
        self,
        client: Client,
        data: Mapping[Hashable, SearchData],
        estimator: Any,
        *,
        fit_params: dict[str, Any],
        scorer: Callable[[Any, Any, Any], float],
        history: History,
        max_in_flight: int,
        log_every: int = 0,
        prefix: str = "",
        label: str = "",
        placement: str = AUTO,
    ) -> None:
        self.client = client
        self.data = dict(data)
        """The search's train/test splits, ``{Group.split: SearchData}``."""
        self.estimator = estimator
        self.fit_params = fit_params
        self.scorer = scorer
        self.history = history
        self.max_in_flight = max_in_flight
        self.log_every = log_every
        self.prefix = prefix
        self.token = f"{label}-{uuid.uuid4().hex[:8]}" if label else uuid.uuid4().hex[:8]
        self.topic = f"scaleml-search-{self.token}"
        self.trials: dict[Hashable, Trial] = {}
        self._queue: deque[Batch] = deque()
        self._in_flight: dict[str, Batch] = {}
        self._speculative: dict[str, Batch] = {}
        # The models of each finished step; not its state, which would keep every state alive.
        self._done: dict[str, list[Trial]] = {}
        most_rows = max((r for d in self.data.values() for r in d.train_rows), default=1)
        self._max_rounds = max(1, min(_MAX_ROUNDS, _MAX_ROUND_ROWS // max(most_rows, 1)))
        self.steps = Steps(
            client,
            self.data,
            estimator,
            fit_params=fit_params,
            scorer=scorer,
            token=self.token,
            topic=self.topic,
            placement=placement,
        )
        self._logged: dict[Hashable, int] = {}
        """Per model, how many of its records the progress messages went through."""
        self._rounds: dict[int, int] = {}
        """Per group (``id``), its scoring rounds so far."""
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._n_workers = max(1, len(client.nthreads()))
        self._errors_checked = 0.0
        self._workers_checked = time.monotonic()
        self._started = 0.0

    def run(self, groups: Sequence[Group]) -> None:
        """Train every group until its policy stops it; raise the first task error."""
        self._started = time.perf_counter()
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
                self._check_workers()
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

    def _check_workers(self) -> None:
        """Every ``_POLL_SECONDS``, see whether a worker left (``Steps.check_workers``)."""
        now = time.monotonic()
        if now - self._workers_checked >= _POLL_SECONDS:
            self._workers_checked = now
            for key in self.steps.check_workers():
                self._on_lost(key)

    # -- submitting --------------------------------------------------------------------------

    def _create(self, groups: Sequence[Group]) -> None:
        self.steps.expect(groups)
        n_models = 0
        for group in groups:
            data = self.data[group.split]
            workers = sorted(data.tests)
            progress.info("[CV%s] creating %d models", group.prefix, len(group.models))
            progress.info(
                "[CV%s] For training there are between %d and %d examples in each chunk",
                group.prefix,
                min(data.train_rows),
                max(data.train_rows),
            )
            order = BlockOrder(len(data.train), group.seed)
            group.live = list(group.models)
            group.waiting = set(group.models)
            group.info = {k: [] for k in group.models}
            homes: dict[str, list[Hashable]] = {}
            for model_id in group.models:
                homes.setdefault(workers[n_models % len(workers)], []).append(model_id)
                n_models += 1
            for home, model_ids in homes.items():
                for chunk in chunks(model_ids, MAX_BATCH):
                    source = self.steps.create(group, chunk, home, order[0])
                    for model_id in chunk:
                        self.trials[model_id] = Trial(model_id, group, order, home, source)
            self._enqueue([(self.trials[k], 1) for k in group.models], ahead=False)

    def _enqueue(self, due: Sequence[tuple[Trial, int]], *, ahead: bool = True) -> None:
        """Queue steps for models due some calls, batched by start and calls (and by worker
        when the blocks travel); with ``ahead``, as many rounds as the group's decisions are
        known ahead."""
        batches: dict[tuple[str, int, int], list[Trial]] = {}
        for trial, calls in due:
            moving = self.steps.mode(trial.group) == MODELS
            home = "" if moving else trial.worker
            batches.setdefault((home, trial.calls_done, calls), []).append(trial)
        for (home, start, calls), trials in batches.items():
            rounds = self._rounds_from(trials[0].group, start) if ahead else 1
            if home:
                parts = chunks(trials, MAX_BATCH)
            else:
                # Traveling batches share the blocks' workers: enough of them to pipeline
                # through every worker, a call or more apart.
                parts = split_evenly(trials, traveling_batches(len(trials), self._n_workers))
            for part in parts:
                self._queue.append(Batch(list(part), start, calls, rounds))

    def _rounds_from(self, group: Group, start: int) -> int:
        """Rounds of a step from ``start`` calls: several where the decisions are known."""
        if group.lookahead is None:
            return 1
        return max(1, min(self._max_rounds, group.lookahead(start)))

    def _fill(self) -> None:
        while self._queue and len(self._in_flight) < self.max_in_flight:
            batch = self._queue.popleft()
            self.steps.submit(batch)
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
        self.steps.submit(guess, sources=[batch.state], priority=-1)
        self._speculative[guess.batch_id] = guess
        for trial in batch.trials:
            trial.speculative = guess

    def _drop_guess(self, guess: Batch) -> None:
        del self._speculative[guess.batch_id]
        self.steps.forget_prefetches(guess)
        for trial in guess.trials:
            trial.speculative = None
        assert guess.state is not None
        self.client.cancel([guess.state])

    # -- receiving ---------------------------------------------------------------------------

    def _on_report(self, result: dict[str, Any]) -> None:
        batch_id = result["batch_id"]
        if batch_id in self._in_flight:
            self._reported(self._in_flight.pop(batch_id), result)
        elif batch_id in self._speculative:
            guess = self._speculative[batch_id]
            guess.lost = guess.lost or guess.report is not None  # a second report: recomputed
            guess.report = result
        elif batch_id in self._done:
            # A finished step ran again: its output was lost with a worker and recomputed.
            mark_restarted(self._done[batch_id], self.prefix, _RECOMPUTED)

    def _on_lost(self, key: str) -> None:
        """A task of a step in flight ran on a worker that died, or its result was lost with
        it (a step that follows the blocks hands the states on between workers): Dask runs it
        again, and the step's models are recomputed."""
        if not key.startswith("partial_fit-"):
            return
        batch_id = key.removeprefix("partial_fit-").rpartition("-")[0]
        if batch_id in self._in_flight:
            mark_restarted(self._in_flight[batch_id].trials, self.prefix, _RECOMPUTED)
        elif batch_id in self._speculative:
            self._speculative[batch_id].lost = True

    def _on_failed(self, batch: Batch) -> None:
        assert batch.state is not None
        error = batch.state.exception()
        if not isinstance(error, KilledWorker):
            try:
                batch.state.result()  # raises the task's own error, with its traceback
            except Exception as exc:
                mark_model_error(exc)
                raise
        if batch.retries >= _MAX_STEP_RETRIES:
            batch.state.result()
        # Its worker kept dying: start the step again from the last completed states, which
        # Dask recomputes from their lineage if they were lost too.
        del self._in_flight[batch.batch_id]
        guesses = {id(g): g for t in batch.trials if (g := t.speculative) is not None}
        for guess in guesses.values():
            self._drop_guess(guess)
        mark_restarted(batch.trials, self.prefix, "lost its worker; restarting")
        again = Batch(batch.trials, batch.start, batch.calls, batch.rounds, batch.retries + 1)
        self.steps.submit(again)
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
        self.steps.forget_prefetches(batch)
        elapsed = time.perf_counter() - self._started
        reports = {r["model_id"]: [*r["earlier"], r] for r in result["models"]}
        for round_ in range(batch.rounds):
            for trial in batch.trials:
                model_id = trial.model_id
                step, last = reports[model_id][round_], reports[model_id][-1]
                # An earlier round: as long before the report as the worker saw.
                when = elapsed - (last["finished_at"] - step["finished_at"])
                previous, params = group.info[model_id], group.models[model_id]
                record = step_record(model_id, params, step, when, previous, group.extra)
                previous.append(record)
                self.history.append(record, restarted=trial.restarted)
                trial.restarted = False
        for trial in batch.trials:
            trial.source = batch.state
            group.waiting.discard(trial.model_id)
        if not group.waiting:
            self._decide(group)

    def _decide(self, group: Group) -> None:
        info = {k: group.info[k] for k in group.live}
        if not group.decisions:  # the first step's states are there to be measured
            states = list({self.trials[k].source.key: self.trials[k].source for k in info}.values())
            self.steps.measure(group, states, len(info), len(info))
        log_rounds(group, info, self._logged, self._rounds, self.log_every)
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
                if guess.lost:
                    mark_restarted(guess.trials, self.prefix, _RECOMPUTED)
                self._start(guess)
            else:
                self._drop_guess(guess)
        self._enqueue([(self.trials[k], n) for k, n in calls.items() if n > 0 and k not in kept])
