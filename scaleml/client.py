"""Python client of the coordinator: submit jobs, follow them, get their results.

::

    from scaleml import Client
    from sklearn.linear_model import SGDClassifier

    client = Client("http://coordinator:8800", token="...")
    job = client.search(
        SGDClassifier(tol=None),
        {"alpha": {"distribution": "loguniform", "low": 1e-5, "high": 1e-1}},
        "s3://bucket/data/*.parquet",
        target="label",
        method="hyperband",
        max_iter=27,
        register_as="churn",
    )
    job.wait()               # a progress bar in terminals and notebooks
    job.result().model_uri

Network errors are retried with exponential backoff (a job submission only when the request
cannot have reached the server). HTTP errors become :class:`CoordinatorError` subclasses
carrying the server's message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from scaleml.errors import ScalemlError

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class CoordinatorError(ScalemlError):
    """The coordinator refused a request; ``status`` is the HTTP status (0: unreachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class CoordinatorUnavailable(CoordinatorError):
    """The coordinator could not be reached, even after retries."""


class AuthenticationError(CoordinatorError):
    """401: the bearer token is missing or wrong."""


class JobNotFound(CoordinatorError):
    """404: no such job."""


class SpecError(CoordinatorError, ValueError):
    """422: the job spec (or a query parameter) is invalid; the message names the field."""


class JobStateError(CoordinatorError):
    """409: the job is in a state that does not allow the request (cancel a finished job)."""


class JobFailed(CoordinatorError):
    """The job ended FAILED (or CANCELLED, see :class:`JobCancelledError`)."""


class JobCancelledError(JobFailed):
    """The job was cancelled."""


_ERRORS: dict[int, type[CoordinatorError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: JobNotFound,
    409: JobStateError,
    422: SpecError,
}


@dataclass(frozen=True)
class JobInfo:
    """A job's state as the coordinator reports it (``raw`` holds every field)."""

    id: str
    kind: str
    state: str
    progress: float | None
    message: str | None
    best_score: float | None
    mlflow_run_id: str | None
    model_uri: str | None
    error: str | None
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
    """One event of a job: ``state``, ``progress`` or ``cancel_requested``."""

    id: int
    type: str
    at: str
    data: dict[str, Any]


class Client:
    """A connection to the coordinator.

    Args:
        url: the coordinator's URL; default ``SCALEML_COORDINATOR_URL``.
        token: bearer token; default ``SCALEML_COORDINATOR_TOKEN``.
        timeout: seconds per HTTP request.
        retries: attempts after a network error before :class:`CoordinatorUnavailable`.
        backoff: first wait between attempts in seconds (doubled each time, at most 10 s).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
    ) -> None:
        if url is None or token is None:
            from scaleml.config import get_settings

            settings = get_settings()
            url = url or settings.coordinator_url
            token = token if token is not None else settings.coordinator_token
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool (jobs keep running on the coordinator)."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- jobs ---------------------------------------------------------------------------------

    def submit(self, spec: dict[str, Any] | str) -> Job:
        """Submit a job spec (a dict or JSON text; see ``scaleml.coordinator.specs``)."""
        body = json.loads(spec) if isinstance(spec, str) else spec
        data = self._request("POST", "/jobs", json=_jsonable(body), idempotent=False)
        return Job(self, data["id"], data)

    def train(self, estimator: Any, dataset: Any, **options: Any) -> Job:
        """Submit incremental training of ``estimator`` (a scikit-learn estimator with
        ``partial_fit``, or a spec) on ``dataset`` (a path/URL, a dict of ``DatasetSpec``
        fields, or a :class:`scaleml.data.Dataset`). ``target``/``features`` given here go to
        the dataset; other options (``epochs``, ``scoring``, ``register_as`` ...) to the spec."""
        return self.submit(_spec("train", estimator, dataset, options))

    def boost(self, estimator: Any, dataset: Any, **options: Any) -> Job:
        """Submit distributed boosting (an XGBoost or LightGBM estimator); see :meth:`train`."""
        return self.submit(_spec("boost", estimator, dataset, options))

    def search(
        self, estimator: Any, params: dict[str, Any], dataset: Any, *, method: str = "hyperband",
        **options: Any,
    ) -> Job:  # fmt: skip
        """Submit a search of ``method`` (incremental, hyperband, halving, grid, random) over
        the JSON space ``params`` (lists, ranges, ``{"distribution": "loguniform", ...}``);
        see :meth:`train` for ``estimator``, ``dataset`` and ``options`` (``max_iter``,
        ``n_iter``, ``scoring``, ``random_state``, ``register_as``, ``options``...)."""
        options = {"method": method, "space": params, **options}
        return self.submit(_spec("search", estimator, dataset, options))

    def job(self, job_id: str) -> Job:
        """A handle on an existing job (checked to exist)."""
        data = self._request("GET", f"/jobs/{job_id}")
        return Job(self, job_id, data)

    def jobs(
        self, *, state: str | list[str] | None = None, experiment: str | None = None,
        offset: int = 0, limit: int = 50,
    ) -> list[JobInfo]:  # fmt: skip
        """Jobs, newest first, filtered by state(s) and experiment."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if state:
            params["state"] = [state] if isinstance(state, str) else list(state)
        if experiment:
            params["experiment"] = experiment
        page = self._request("GET", "/jobs", params=params)
        return [JobInfo.of(item) for item in page["items"]]

    def health(self) -> dict[str, Any]:
        """The coordinator's readiness report (also when it says 503)."""
        response = self._send("GET", "/health", idempotent=True)
        return response.json()

    # -- HTTP ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, idempotent: bool = True, **kw: Any) -> Any:
        response = self._send(method, path, idempotent=idempotent, **kw)
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    def _send(self, method: str, path: str, *, idempotent: bool, **kw: Any) -> httpx.Response:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kw)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure: Exception = exc  # the request never reached the server: safe to retry
            except httpx.TransportError as exc:
                if not idempotent:
                    raise CoordinatorUnavailable(
                        f"{method} {self.url}{path} failed after it was sent ({exc}); "
                        "list the jobs to see whether it was accepted"
                    ) from exc
                failure = exc
            else:
                if response.status_code in (502, 503, 504) and idempotent and path != "/health":
                    failure = CoordinatorError(f"HTTP {response.status_code}")
                else:
                    return response
            if attempt < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise CoordinatorUnavailable(
            f"cannot reach the coordinator at {self.url} ({failure}); is `scaleml coordinator` "
            "running and SCALEML_COORDINATOR_URL right?"
        )

    def _stream_events(self, job_id: str, after: int, follow: bool) -> Iterator[JobEvent]:
        params = {"after": after, "follow": str(follow).lower()}
        with self._http.stream(
            "GET", f"/jobs/{job_id}/events", params=params, timeout=httpx.Timeout(30, read=None)
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            yield from _parse_sse(response.iter_lines())


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


def _spec(kind: str, estimator: Any, dataset: Any, options: dict[str, Any]) -> dict[str, Any]:
    dataset_fields = {
        key: options.pop(key)
        for key in ("target", "features", "validation_fraction", "format", "split_seed")
        if key in options
    }
    return {
        "kind": kind,
        "estimator": _estimator_spec(estimator),
        "dataset": {**_dataset_spec(dataset), **dataset_fields},
        **options,
    }


def _estimator_spec(estimator: Any) -> dict[str, Any]:
    if isinstance(estimator, dict):
        return estimator
    if isinstance(estimator, str):
        return {"estimator": estimator, "params": {}}
    dump = getattr(estimator, "model_dump", None)
    if callable(dump):  # an EstimatorSpec
        return dump(mode="json")
    from scaleml.estimators import to_spec

    return to_spec(estimator).model_dump(mode="json")


def _dataset_spec(dataset: Any) -> dict[str, Any]:
    if isinstance(dataset, dict):
        return dict(dataset)
    if isinstance(dataset, str | list):
        return {"path": dataset}
    if hasattr(dataset, "source") and hasattr(dataset, "target"):  # a scaleml Dataset
        spec = {
            "path": dataset.source
            if isinstance(dataset.source, str | list)
            else str(dataset.source),
            "target": dataset.target,
            "features": list(dataset.features),
            "format": dataset.format,
            "validation_fraction": dataset.validation_fraction,
            "split_seed": dataset.split_seed,
        }
        if dataset.storage_options:
            spec["storage_options"] = dataset.storage_options
        return spec
    return {"path": str(dataset)}  # a pathlib.Path


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(value)


def _error(response: httpx.Response) -> CoordinatorError:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    if isinstance(detail, list):  # FastAPI validation errors: name each field
        detail = "; ".join(_field_error(err) for err in detail)
    cls = _ERRORS.get(response.status_code, CoordinatorError)
    return cls(f"HTTP {response.status_code}: {detail}", response.status_code)


def _field_error(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    loc = [str(part) for part in err.get("loc", []) if part not in ("body",)]
    loc = [part for part in loc if part not in ("train", "boost", "search")] or loc
    return f"{'.'.join(loc) or 'request'}: {err.get('msg', err)}"


def _parse_sse(lines: Iterator[str]) -> Iterator[JobEvent]:
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
