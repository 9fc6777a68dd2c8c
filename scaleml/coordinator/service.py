"""The coordinator's engine: claims queued jobs, runs them in threads, heartbeats, cancels.

One loop thread per coordinator replica, every ``poll_s`` (and at once when woken by a submit
or a cancel):

1. renew the lease of the jobs this replica runs (its heartbeat); a job it no longer holds
   (another replica ended the attempt after the lease ran out) is stopped and not recorded;
2. stop the jobs whose cancellation was requested (through any replica's API);
3. end every attempt whose lease ran out (its coordinator died: "coordinator restarted"):
   the job is re-queued as its next attempt, or FAILED after ``max_attempts``, and the
   attempt's MLflow runs left RUNNING (parent and nested) are ended FAILED;
4. claim QUEUED jobs, oldest first, up to ``coordinator_max_running_jobs``.

Each job runs in its own thread with its own Dask client. Cancelling a job makes its next
progress callback raise (its MLflow runs end KILLED); a job still running after a grace period
(boosting has no callbacks) has its Dask client closed under it. A job's client is closed when
it ends, whatever the outcome, so every future it held is released on the scheduler.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scaleml.cluster import connect
from scaleml.config import Settings, get_settings
from scaleml.coordinator._orphans import end_orphaned_runs
from scaleml.coordinator.runners import JobCancelled, JobContext, run_job
from scaleml.coordinator.specs import parse_spec
from scaleml.coordinator.store import RESTARTED, JobRow, JobStore

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger("scaleml.coordinator")

STOPPED = "coordinator stopped while the job ran"
_LEASE_HEARTBEATS = 3  # a job's lease lasts this many heartbeats
_CANCEL_GRACE_S = 2.0  # a cancelled job's own callbacks get this long to stop it


@dataclass
class _Running:
    job_id: str
    cancelled: threading.Event = field(default_factory=threading.Event)
    client: Client | None = None
    thread: threading.Thread | None = None
    lost: bool = False  # another replica ended this attempt: record nothing


class Coordinator:
    """Runs the jobs of a :class:`JobStore` on the Dask cluster of ``settings``.

    Args:
        settings: scaleml settings (scheduler, MLflow store, coordinator knobs).
        store: the job store; default one on ``settings.coordinator_db``.
    """

    def __init__(self, settings: Settings | None = None, store: JobStore | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = store or JobStore(self.settings.coordinator_db)
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.heartbeat_s = self.settings.coordinator_heartbeat_s
        self.lease_s = _LEASE_HEARTBEATS * self.heartbeat_s
        self.max_running = self.settings.coordinator_max_running_jobs
        self.last_tick: float | None = None
        self.dask_error: str | None = None
        self._dask: Client | None = None
        self._cluster = ExitStack()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread (it connects to the cluster first)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="coordinator", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, stop the running jobs (FAILED "coordinator stopped ..."), disconnect."""
        self._stop.set()
        with self._lock:
            running = list(self._running.values())
        for job in running:
            self.store.finish(job.job_id, self.replica, "FAILED", error=STOPPED)
            self._interrupt(job)
        for job in running:
            if job.thread is not None:
                job.thread.join(timeout)
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)  # the loop thread disconnects from the cluster
        self.store.close()

    def wake(self) -> None:
        """Run the loop now (after a submit or a cancel) instead of at the next poll."""
        self._wake.set()

    @property
    def running_jobs(self) -> list[str]:
        """Ids of the jobs this replica runs now."""
        with self._lock:
            return list(self._running)

    @property
    def ready(self) -> bool:
        """Whether the loop is alive, connected to Dask and recently ticked."""
        return (
            self._dask is not None
            and self.last_tick is not None
            and time.time() - self.last_tick < max(self.lease_s, 10.0)
            and self._thread is not None
            and self._thread.is_alive()
        )

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        poll_s = min(self.heartbeat_s, 1.0)
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # the loop must live on (database hiccups)
                logger.exception("coordinator loop error")
            self._wake.wait(poll_s)
            self._wake.clear()
        self._cluster.close()  # in this thread, which opened it

    def _tick(self) -> None:
        if self._dask is None and not self._connect():
            return
        store = self.store
        local = self.running_jobs
        held = set(store.heartbeat(self.replica, local, self.lease_s))
        for job_id in local:
            if job_id not in held:
                self._lose(job_id)
        for job_id in store.cancel_requests(self.replica):
            self._cancel_local(job_id)
        for job in store.expired():
            if job.id not in held:
                self._end_expired(job)
        while not self._stop.is_set():
            with self._lock:
                if len(self._running) >= self.max_running:
                    break
            job = store.claim_next(self.replica, self.lease_s, exclude=list(self._running))
            if job is None:
                break
            self._launch(job)
        self.last_tick = time.time()

    def _connect(self) -> bool:
        try:
            self._dask = self._cluster.enter_context(connect(self.settings, announce=logger.info))
        except Exception as exc:  # retried at the next tick, shown by /health
            self.dask_error = f"{type(exc).__name__}: {exc}"
            logger.warning("cannot reach the Dask cluster: %s", self.dask_error)
            return False
        self.dask_error = None
        return True

    # -- one job ------------------------------------------------------------------------------

    def _launch(self, job: JobRow) -> None:
        running = _Running(job.id)
        thread = threading.Thread(
            target=self._run, args=(job, running), name=f"job-{job.id[:8]}", daemon=True
        )
        running.thread = thread
        with self._lock:
            self._running[job.id] = running
        logger.info("job %s (%s) claimed by %s", job.id, job.kind, self.replica)
        thread.start()

    def _run(self, job: JobRow, running: _Running) -> None:
        state, error, values = "FAILED", None, {}
        stack = ExitStack()
        try:
            spec = parse_spec(job.spec)
            assert self._dask is not None
            address = self._dask.scheduler.address
            job_settings = self.settings.model_copy(update={"scheduler": address})
            running.client = stack.enter_context(connect(job_settings, announce=logger.debug))
            context = JobContext(
                job_id=job.id,
                attempt=job.attempt,
                settings=self.settings,
                client=running.client,
                cancelled=running.cancelled,
                on_progress=lambda update: self._progress(job.id, update),
                on_run=lambda experiment_id, run_id: self._best_effort(
                    self.store.update_running,
                    job.id,
                    self.replica,
                    mlflow_experiment_id=experiment_id,
                    mlflow_run_id=run_id,
                ),
            )
            result = run_job(spec, context)
            state = "SUCCEEDED"
            values = {
                "result": result,
                "progress": 1.0,
                "model_uri": result.get("model_uri"),
                "mlflow_run_id": result.get("run_id"),
                "best_score": result.get("best_score"),
            }
        except BaseException as exc:  # a job's failure never stops the service
            if running.cancelled.is_set() or isinstance(exc, JobCancelled):
                state = "CANCELLED"
            else:
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("job %s failed: %s", job.id, error)
                logger.debug("%s", traceback.format_exc())
        finally:
            stack.close()  # the job's Dask client: its remaining futures are released
            if running.lost:
                logger.warning("job %s: attempt %d stopped, not ours any more", job.id, job.attempt)
            else:
                self._finish(job.id, state, error, values)
            with self._lock:
                self._running.pop(job.id, None)  # its lease is no longer renewed
            self._wake.set()

    def _finish(self, job_id: str, state: str, error: str | None, values: dict[str, Any]) -> None:
        for attempt in range(5):  # ride out a database hiccup
            try:
                self.store.finish(job_id, self.replica, state, error=error, **values)
                return
            except Exception:
                logger.warning("job %s: cannot record %s yet", job_id, state, exc_info=True)
                time.sleep(0.5 * 2**attempt)
        logger.error("job %s: %s not recorded; its lease will expire", job_id, state)

    def _best_effort(self, record: Any, *args: Any, **kwargs: Any) -> None:
        """Progress is informative: a failure to store it must not fail the job."""
        try:
            record(*args, **kwargs)
        except Exception:
            logger.warning("cannot store the progress of a job", exc_info=True)

    def _end_expired(self, job: JobRow) -> None:
        """End an attempt whose holder died (retry, fail or cancel the job), then its runs."""
        state = self.store.end_attempt(job.id, job.attempt, RESTARTED)
        if state is None:
            return  # another replica ended it
        logger.warning(
            "job %s: the coordinator of attempt %d/%d stopped heartbeating; %s",
            job.id, job.attempt, job.max_attempts, "retrying" if state == "QUEUED" else state,
        )  # fmt: skip
        thread = threading.Thread(
            target=self._end_orphaned_runs,
            args=(job.id, job.attempt, job.mlflow_experiment_id),
            name=f"orphans-{job.id[:8]}",
            daemon=True,
        )  # MLflow calls, one per run: not in the loop, whose heartbeats keep leases alive
        thread.start()

    def _end_orphaned_runs(self, job_id: str, attempt: int, experiment_id: str | None) -> None:
        try:
            ended = end_orphaned_runs(self.settings, job_id, experiment_id, attempt)
        except Exception:  # MLflow down: the attempt is ended all the same
            logger.warning("job %s: cannot end its MLflow runs", job_id, exc_info=True)
            return
        if ended:
            logger.info("job %s: ended %d orphaned MLflow run(s) FAILED", job_id, ended)

    def _lose(self, job_id: str) -> None:
        with self._lock:
            running = self._running.get(job_id)
        if running is not None and not running.lost:
            logger.warning("job %s: its attempt was ended by another replica; stopping", job_id)
            running.lost = True
            self._interrupt(running)

    def _progress(self, job_id: str, update: dict[str, Any]) -> None:
        values = {"message": update.get("message"), "best_score": update.get("best_score")}
        if update.get("progress") is not None:
            values["progress"] = update["progress"]
        self._best_effort(self.store.report, job_id, self.replica, "progress", update, **values)

    def _cancel_local(self, job_id: str) -> None:
        with self._lock:
            running = self._running.get(job_id)
        if running is not None:
            logger.info("job %s: cancelling", job_id)
            self._interrupt(running)

    def _interrupt(self, running: _Running) -> None:
        """Stop a job: its next progress callback raises; if it has not stopped after a
        grace period (boosting has no callbacks), its Dask client is closed under it."""
        if running.cancelled.is_set():
            return  # already being stopped
        running.cancelled.set()
        timer = threading.Timer(_CANCEL_GRACE_S, self._close_client, args=(running,))
        timer.daemon = True
        timer.start()

    def _close_client(self, running: _Running) -> None:
        client = running.client
        if client is None or running.thread is None or not running.thread.is_alive():
            return  # the job ended and closed its client itself
        logger.info("job %s: closing its Dask client to stop its work", running.job_id)
        try:
            client.close()
        except Exception:  # closing twice or a lost connection is fine
            logger.debug("closing the Dask client of job %s", running.job_id, exc_info=True)
