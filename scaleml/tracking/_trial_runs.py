"""The nested runs of a search, written by a background thread in batches.

The search's callbacks only queue work (open a run, a step metric, a tag, close a run); the
thread creates the runs and sends metrics with ``MlflowClient.log_batch``, flushing every
``FLUSH_RECORDS`` queued metrics or ``FLUSH_SECONDS`` seconds, and at the end. An MLflow error
stops the writing (the queue is still drained) and is raised by :meth:`TrialRuns.finish`;
:meth:`TrialRuns.abort` ends every run still open with FAILED or KILLED.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable
from contextlib import suppress
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from scaleml.errors import TrackingError
from scaleml.tracking._runs import _param_text, quiet_run_links

FLUSH_RECORDS = 1000
FLUSH_SECONDS = 2.0
_PER_REQUEST = 1000  # MLflow's limit of metrics in one log_batch request


class TrialRuns:
    """The nested runs of one search, written by a background thread in batches."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.tags = dict(tags or {})  # set on every trial run (the tracker's own tags)
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.run_ids: dict[Hashable, str] = {}
        self._ended: set[Hashable] = set()
        self._pending: dict[Hashable, list[Metric]] = {}
        self._n_pending = 0
        self._error: BaseException | None = None
        self._aborting = False
        self._queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="scaleml-trial-runs", daemon=True)
        self._thread.start()

    # -- called from the search's thread: only queue work --------------------------------------

    def open(self, model_id: Hashable, name: str, params: dict[str, Any]) -> None:
        """Create the trial's run with its parameters."""
        self._queue.put(("open", (model_id, name, params)))

    def metric(self, model_id: Hashable, key: str, value: float, step: int) -> None:
        """Queue one step metric."""
        now = int(time.time() * 1000)
        self._queue.put(("metric", (model_id, Metric(key, float(value), now, int(step)))))

    def tag(self, model_id: Hashable, key: str, value: Any) -> None:
        """Set a tag on the trial's run."""
        self._queue.put(("tags", (model_id, {key: value})))

    def close(self, model_id: Hashable, *, metrics: dict[str, float], tags: dict[str, Any]) -> None:
        """Log the trial's final metrics and tags and end its run FINISHED."""
        self._queue.put(("close", (model_id, metrics, tags)))

    def finish(self) -> None:
        """Write everything queued and stop the thread; raise if MLflow refused something."""
        self._stop()
        if self._error is not None:
            raise TrackingError(f"logging the trial runs failed: {self._error}") from self._error

    def abort(self, status: str) -> None:
        """Write what can be written for the runs already created (runs still queued for
        creation are not created: a cancel waits on MLflow for seconds, not for the backlog),
        then end every run that is still open with ``status``."""
        self._aborting = True
        self._stop()
        for model_id, run_id in self.run_ids.items():
            if model_id not in self._ended:
                with suppress(Exception), quiet_run_links():
                    self.client.set_terminated(run_id, status=status)

    # -- the background thread -----------------------------------------------------------------

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _loop(self) -> None:
        deadline = time.monotonic() + FLUSH_SECONDS
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = ("flush", None)
            if item is None:
                self._guard(self._flush)
                return
            kind, payload = item
            if self._aborting and kind != "flush" and payload[0] not in self.run_ids:
                continue  # aborting: a trial whose run was never created stays uncreated
            if kind == "flush" or self._n_pending >= FLUSH_RECORDS:
                self._guard(self._flush)
                deadline = time.monotonic() + FLUSH_SECONDS
            if kind != "flush":
                self._guard(getattr(self, f"_do_{kind}"), *payload)

    def _guard(self, work: Callable[..., None], *args: Any) -> None:
        if self._error is not None:
            return  # MLflow already failed: drain the queue, the caller raises
        try:
            work(*args)
        except Exception as exc:  # reported by finish(); abort() ends the runs
            self._error = exc

    def _do_open(self, model_id: Hashable, name: str, params: dict[str, Any]) -> None:
        tags = {
            **self.tags,
            "mlflow.parentRunId": self.parent_run_id,
            "scaleml.model_id": str(model_id),
        }
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        self.run_ids[model_id] = run.info.run_id
        self._pending[model_id] = []
        items = [Param(k, _param_text(v)) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run.info.run_id, params=items[start : start + 100])

    def _do_metric(self, model_id: Hashable, metric: Metric) -> None:
        self._pending[model_id].append(metric)
        self._n_pending += 1

    def _do_tags(self, model_id: Hashable, tags: dict[str, Any]) -> None:
        self._send(model_id, [], tags)

    def _do_close(self, model_id: Hashable, metrics: dict[str, float], tags: dict) -> None:
        self._flush_one(model_id)
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        self._send(model_id, batch, tags)
        with quiet_run_links():
            self.client.set_terminated(self.run_ids[model_id], status="FINISHED")
        self._ended.add(model_id)

    def _flush(self) -> None:
        for model_id in list(self._pending):
            self._flush_one(model_id)
        self._n_pending = 0

    def _flush_one(self, model_id: Hashable) -> None:
        pending, self._pending[model_id] = self._pending[model_id], []
        for start in range(0, len(pending), _PER_REQUEST):
            self._send(model_id, pending[start : start + _PER_REQUEST], {})

    def _send(self, model_id: Hashable, metrics: list[Metric], tags: dict[str, Any]) -> None:
        run_tags = [RunTag(k, str(v)) for k, v in tags.items()]
        if metrics or run_tags:
            self.client.log_batch(self.run_ids[model_id], metrics=metrics, tags=run_tags)
