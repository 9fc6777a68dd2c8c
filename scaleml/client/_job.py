"""A handle on one job: its state, its events, waiting for it and its result."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from scaleml.client._errors import CoordinatorUnavailable, JobCancelledError, JobFailed

if TYPE_CHECKING:
    from scaleml.client._client import Client

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class JobInfo:
    """A job's state as the coordinator reports it (``raw`` holds every field).

    ``attempt`` is the attempt running (or next to run), from 1; a job whose coordinator died
    is retried until ``max_attempts``.
    """

    id: str
    kind: str
    state: str
    progress: float | None
    message: str | None
    best_score: float | None
    mlflow_run_id: str | None
    model_uri: str | None
    error: str | None
    attempt: int
    max_attempts: int
    raw: dict[str, Any] = field(repr=False)

    @property
    def done(self) -> bool:
        """Whether the job has ended (SUCCEEDED, FAILED or CANCELLED)."""
        return self.state in TERMINAL_STATES

    @classmethod
    def of(cls, data: dict[str, Any]) -> JobInfo:
        """From the coordinator's JSON."""
        keys = ("progress", "message", "best_score", "mlflow_run_id", "model_uri", "error")
        return cls(
            id=data["id"], kind=data["kind"], state=data["state"], raw=data,
            attempt=int(data.get("attempt", 1)), max_attempts=int(data.get("max_attempts", 1)),
            **{key: data.get(key) for key in keys},
        )  # fmt: skip


@dataclass(frozen=True)
class JobResult:
    """What a SUCCEEDED job produced."""

    run_id: str | None
    model_uri: str | None
    registered_version: str | None
    best_score: float | None
    best_params: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class JobEvent:
    """One event of a job: ``state``, ``progress``, ``cancel_requested`` or ``retrying``."""

    id: int
    type: str
    at: str
    data: dict[str, Any]


class Job:
    """A handle on a job; it stays valid across client reconnects (only the id matters)."""

    def __init__(self, client: Client, job_id: str, data: dict[str, Any] | None = None) -> None:
        self.client = client
        self.id = job_id
        self._last = JobInfo.of(data) if data else None

    def __repr__(self) -> str:
        state = self._last.state if self._last else "?"
        return f"<Job {self.id} {state}>"

    def status(self) -> JobInfo:
        """The job's current state, progress, best score, MLflow ids and error."""
        self._last = JobInfo.of(self.client._request("GET", f"/jobs/{self.id}"))
        return self._last

    def cancel(self) -> JobInfo:
        """Cancel the job (QUEUED: at once; RUNNING: its Dask work stops, its MLflow run
        ends KILLED). Raises :class:`JobStateError` if it already ended otherwise."""
        data = self.client._request("POST", f"/jobs/{self.id}/cancel", idempotent=True)
        self._last = JobInfo.of(data)
        return self._last

    def wait(
        self, timeout: float | None = None, *, progress: bool = True, poll_s: float = 1.0
    ) -> JobInfo:
        """Wait until the job ends and return its final state (a tqdm progress bar with
        ``progress``). Raises ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        try:
            while True:
                info = self.status()
                if progress:
                    bar = _update_bar(bar, info)
                if info.done:
                    return info
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"job {self.id} still {info.state} after {timeout} s")
                wait = poll_s if deadline is None else min(poll_s, deadline - time.monotonic())
                time.sleep(max(wait, 0.0))
        finally:
            if bar is not None:
                bar.close()

    def result(self, timeout: float | None = None) -> JobResult:
        """Wait for the job (quietly) and return what it produced.

        Raises:
            JobFailed: the job FAILED (the message is its error).
            JobCancelledError: the job was cancelled.
            TimeoutError: it did not end within ``timeout`` seconds.
        """
        info = self.wait(timeout, progress=False)
        if info.state == "CANCELLED":
            raise JobCancelledError(f"job {self.id} was cancelled")
        if info.state == "FAILED":
            raise JobFailed(f"job {self.id} failed: {info.error}")
        result = info.raw.get("result") or {}
        return JobResult(
            run_id=result.get("run_id"),
            model_uri=result.get("model_uri"),
            registered_version=result.get("registered_version"),
            best_score=result.get("best_score"),
            best_params=result.get("best_params") or {},
            raw=result,
        )

    def events(self, *, follow: bool = True, after: int = 0) -> Iterator[JobEvent]:
        """The job's events as they happen (server-sent events); with ``follow`` the iterator
        ends when the job has ended. A dropped stream is resumed where it stopped."""
        cursor = after
        delay = self.client.backoff
        failures = 0
        while True:
            try:
                for event in self.client._stream_events(self.id, cursor, follow):
                    cursor = event.id
                    failures, delay = 0, self.client.backoff
                    yield event
                return
            except (httpx.TransportError, httpx.StreamError) as exc:
                failures += 1
                if failures > self.client.retries:
                    raise CoordinatorUnavailable(
                        f"event stream of job {self.id} lost: {exc}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 10.0)


def parse_sse(lines: Iterator[str]) -> Iterator[JobEvent]:
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                data = json.loads(fields["data"])
                yield JobEvent(
                    id=int(data.get("id", fields.get("id", 0))),
                    type=data.get("type", fields.get("event", "message")),
                    at=str(data.get("at", "")),
                    data=data.get("data", {}),
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        fields[name] = fields[name] + "\n" + value if name in fields else value


def _update_bar(bar: Any, info: JobInfo) -> Any:
    from tqdm.auto import tqdm

    if bar is None:
        bar = tqdm(total=100, desc=f"{info.kind} {info.id[:8]}", unit="%")
    if info.progress is not None:
        bar.n = round(info.progress * 100, 1)
    postfix = {"state": info.state}
    if info.best_score is not None:
        postfix["best"] = f"{info.best_score:.4g}"
    bar.set_postfix(postfix, refresh=False)
    bar.refresh()
    return bar
