"""The driver: runs the ``partial_fit`` calls a policy asks for, on the cluster.

Synchronous, on the public ``distributed`` API: ``Client.submit``, ``Future`` callbacks, and
Dask's structured events (``Worker.log_event`` / ``Client.subscribe_topic``). Every model is
a chain of state futures. A *step* of ``k`` calls is ``k`` chained tasks; the last one also
scores the model on the test set and sends a small report (score, calls, timings) as an
event, which the scheduler pushes to the client: no result is fetched, no model or data
block ever comes back to the driver.

Each model lives on one worker, dealt round-robin at creation: its tasks are submitted there
(a loose restriction: if that worker dies, they run elsewhere) and score on that worker's
copy of the test set, so only training blocks move, fetched by the worker while it computes
(half the transfers of letting the scheduler move models to blocks). The models of a group
visit the blocks in one shared seeded order, dask-ml's, so an integer ``random_state`` trains
the models dask-ml would.

Models are grouped (a whole search, or one Hyperband bracket): when every step of a group has
reported, its policy decides that group's next steps. While a group waits for its last
steps, models that got the same number of calls the last two times start that many again
at low priority (kept if the decision agrees, cancelled if not), so workers are not idle at
the end of a round. At most ``max_in_flight`` steps are submitted at once; a model never has
two steps in flight, so its calls stay sequential.

Resilience: a state lost with a worker is recomputed by Dask from its lineage (every call
works on a copy, so a re-run gives the same model). The re-run tasks report again, so the
driver learns which model was hit and marks that model's next record ``restarted``. A step
that failed because its worker kept dying (``KilledWorker``) is submitted again from the
model's last completed state.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import Client, Future
from distributed.scheduler import KilledWorker

from scaleml.search._data import SearchData
from scaleml.search._history import History
from scaleml.search._policies import Decision, Info
from scaleml.search._tasks import create_model, fit_and_score, fit_block, report

logger = logging.getLogger("scaleml.search")
Policy = Callable[[Info, Sequence[Decision]], Decision]
_MAX_STEP_RETRIES = 2
_POLL_SECONDS = 1.0
_ERROR_CHECK_SECONDS = 0.2


@dataclass
class Group:
    """Models whose decisions are taken together by one policy."""

    models: dict[Hashable, dict[str, Any]]
    """``{model_id: params}`` in creation order."""
    policy: Policy
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields added to each record of this group (e.g. ``{"bracket": 2}``)."""
    info: dict[Hashable, list[dict[str, Any]]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    live: list[Hashable] = field(default_factory=list)
    waiting: set[Hashable] = field(default_factory=set)


@dataclass
class _Step:
    """Some chained calls of one model, the last of which scores it."""

    step_id: str
    state: Future
    start: int
    calls: int
    report: dict[str, Any] | None = None
    finished_polls: int = 0


class _BlockOrder:
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


@dataclass
class _Trial:
    model_id: Hashable
    group: Group
    order: _BlockOrder
    state: Future
    """The last completed state (the fresh model before any call)."""
    step: _Step | None = None
    speculative: _Step | None = None
    decided: list[int] = field(default_factory=list)
    restarted: bool = False
    retries: int = 0
    worker: str = ""
    """The worker the model lives on."""

    @property
    def calls_done(self) -> int:
        records = self.group.info[self.model_id]
        return records[-1]["partial_fit_calls"] if records else 0


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
        self.trials: dict[Hashable, _Trial] = {}
        self._queue: deque[tuple[_Trial, int]] = deque()
        self._in_flight: dict[str, _Trial] = {}
        self._speculative: dict[str, _Trial] = {}
        self._done_steps: dict[str, Hashable] = {}
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
            pending = [t.step for t in self.trials.values() if t.step is not None]
            pending += [t.speculative for t in self.trials.values() if t.speculative is not None]
            if pending:
                self.client.cancel([step.state for step in pending])

    def live_states(self, group: Group) -> dict[Hashable, Future]:
        """The last state future of each model the group's policy kept to the end."""
        return {k: self.trials[k].state for k in group.live}

    def release(self) -> None:
        """Forget every model state future held by the driver."""
        for trial in self.trials.values():
            trial.state.release()

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
        for step_id, trial in list(self._in_flight.items()):
            if trial.step is not None and trial.step.state.status == "error":
                self._on_failed(step_id, trial.step.state)

    # -- submitting --------------------------------------------------------------------------

    def _create(self, groups: Sequence[Group]) -> None:
        n_blocks = len(self.data.train)
        workers = sorted(self.data.tests)
        for group in groups:
            order = _BlockOrder(n_blocks, group.seed)
            group.live = list(group.models)
            group.waiting = set(group.models)
            group.info = {k: [] for k in group.models}
            for model_id, params in group.models.items():
                home = workers[len(self.trials) % len(workers)]
                state = self.client.submit(
                    create_model,
                    self.estimator,
                    model_id,
                    params,
                    key=f"create_model-{self.token}-{model_id}",
                    workers=[home],
                    allow_other_workers=True,
                )
                trial = _Trial(model_id, group, order, state, worker=home)
                self.trials[model_id] = trial
                self._queue.append((trial, 1))

    def _fill(self) -> None:
        while self._queue and len(self._in_flight) < self.max_in_flight:
            trial, calls = self._queue.popleft()
            self._start(trial, self._submit_step(trial, trial.calls_done, calls))

    def _start(self, trial: _Trial, step: _Step) -> None:
        trial.step = step
        self._in_flight[step.step_id] = trial
        if step.report is not None:  # a speculative step that already reported
            self._events.put(step.report)

    def _submit_step(self, trial: _Trial, start: int, calls: int, priority: int = 0) -> _Step:
        """Chain ``calls`` calls from the last completed state; the last one scores."""
        state = trial.state
        step_id = f"{self.token}-{trial.model_id}-{start}-{uuid.uuid4().hex[:6]}"
        where = {"workers": [trial.worker], "allow_other_workers": True, "priority": priority}
        for i in range(calls):
            xy = self.data.train[trial.order[start + i]]
            key = f"partial_fit-{step_id}-{i}"
            if i < calls - 1:
                state = self.client.submit(fit_block, state, xy, self.fit_params, key=key, **where)
            else:
                state = self.client.submit(
                    fit_and_score,
                    state,
                    xy,
                    self.fit_params,
                    self.scorer,
                    self.data.test_on(trial.worker),
                    self.topic,
                    step_id,
                    key=key,
                    **where,
                )
        return _Step(step_id, state, start, calls)

    # -- receiving ---------------------------------------------------------------------------

    def _on_report(self, result: dict[str, Any]) -> None:
        step_id = result["step_id"]
        if step_id in self._in_flight:
            self._reported(self._in_flight.pop(step_id), result)
        elif step_id in self._speculative:
            step = self._speculative[step_id].speculative
            if step is not None and step.step_id == step_id:
                step.report = result
        elif step_id in self._done_steps:
            # A finished step ran again: its output was lost with a worker and recomputed.
            trial = self.trials[self._done_steps[step_id]]
            if not trial.restarted:
                logger.warning(
                    "[CV%s] model %s was lost with a worker and is recomputed",
                    self.prefix,
                    trial.model_id,
                )
            trial.restarted = True

    def _on_failed(self, step_id: str, future: Future) -> None:
        trial = self._in_flight.get(step_id)
        if trial is None or trial.step is None or trial.step.step_id != step_id:
            return  # a cancelled speculative step, or a step that already reported
        error = future.exception()
        if not isinstance(error, KilledWorker) or trial.retries >= _MAX_STEP_RETRIES:
            future.result()  # raises the task's own error
        # Its worker kept dying: start the step again from the last completed state, which
        # Dask recomputes from its lineage if it was lost too.
        del self._in_flight[step_id]
        trial.retries += 1
        trial.restarted = True
        logger.warning("[CV%s] model %s lost its worker; restarting", self.prefix, trial.model_id)
        self._start(trial, self._submit_step(trial, trial.step.start, trial.step.calls))

    def _poll(self) -> None:
        """No event for a while: fetch the reports of finished steps whose event is missing."""
        for step_id, trial in list(self._in_flight.items()):
            step = trial.step
            if step is None or step.state.status != "finished":
                continue
            step.finished_polls += 1
            if step.finished_polls >= 2 and step_id in self._in_flight:
                result = self.client.submit(report, step.state, step_id, pure=False).result()
                self._reported(self._in_flight.pop(step_id), result)

    def _reported(self, trial: _Trial, result: dict[str, Any]) -> None:
        group = trial.group
        assert trial.step is not None
        restarted = trial.restarted
        trial.state, trial.step, trial.restarted = trial.step.state, None, False
        self._done_steps[result["step_id"]] = trial.model_id
        record = {
            "model_id": trial.model_id,
            "params": group.models[trial.model_id],
            "partial_fit_calls": result["partial_fit_calls"],
            "partial_fit_time": result["partial_fit_time"],
            "score": result["score"],
            "score_time": result["score_time"],
            "elapsed_wall_time": time.perf_counter() - self._started,
            "restarted": restarted,
            **group.extra,
        }
        group.info[trial.model_id].append(record)
        self.history.append(record)
        group.waiting.discard(trial.model_id)
        if not group.waiting:
            self._decide(group)
        elif len(trial.decided) >= 2 and trial.decided[-1] == trial.decided[-2]:
            # Guess that this model gets the same calls again (see the module docstring).
            step = self._submit_step(trial, trial.calls_done, trial.decided[-1], priority=-1)
            trial.speculative = step
            self._speculative[step.step_id] = trial

    def _decide(self, group: Group) -> None:
        info = {k: group.info[k] for k in group.live}
        self._log_round(info)
        decision = group.policy(info, group.decisions)
        group.decisions.append(decision)
        unknown = set(decision.calls) - set(info)
        if unknown:
            raise RuntimeError(f"the policy named models that are not live: {sorted(unknown)}")
        group.live = [k for k in info if k in decision.calls]
        for model_id in info:
            trial = self.trials[model_id]
            calls = int(decision.calls.get(model_id, 0))
            guess, trial.speculative = trial.speculative, None
            if guess is not None:
                del self._speculative[guess.step_id]
            trial.decided.append(calls)
            if calls > 0:
                group.waiting.add(model_id)
                if guess is not None and guess.calls == calls:
                    self._start(trial, guess)
                    continue
                self._queue.append((trial, calls))
            if guess is not None:
                self.client.cancel([guess.state])

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
