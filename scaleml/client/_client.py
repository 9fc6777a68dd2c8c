"""The connection to the coordinator: requests with retries, and the job builders."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from scaleml.client._errors import CoordinatorError, CoordinatorUnavailable, error_from
from scaleml.client._job import Job, JobEvent, JobInfo, parse_sse


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

    def evaluate(self, model: str, dataset: Any, **options: Any) -> Job:
        """Submit an evaluation of the MLflow model ``model`` on ``dataset`` (as for
        :meth:`train`); options: ``split``, ``metrics``, ``sensitive_features``, ``output``."""
        return self.submit(_insight_spec("evaluate", {"model": model}, dataset, options))

    def compare(self, models: list[str], dataset: Any, **options: Any) -> Job:
        """Submit a comparison of MLflow models on the same rows of ``dataset``; options:
        ``registered``, ``experiment_runs``, ``search_run``, ``sort_by``, ``split``,
        ``output``, and ``train`` (estimator specs trained first, all at once, and compared
        too; see :mod:`scaleml.insight._candidates`)."""
        return self.submit(_insight_spec("compare", {"models": list(models)}, dataset, options))

    def explain(self, model: str, dataset: Any, **options: Any) -> Job:
        """Submit SHAP explanations of the registered ``model`` (``models:/name@alias``) on
        ``dataset`` (see :meth:`train`), logged to the model's run; options: ``sample``,
        ``part``, ``log``."""
        dataset_options = {k: options.pop(k) for k in ("target", "features") if k in options}
        spec = {"kind": "explain", "model": model, **options}
        spec["dataset"] = {**_dataset_spec(dataset), **dataset_options}
        return self.submit(spec)

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
            raise error_from(response)
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
                raise error_from(response)
            yield from parse_sse(response.iter_lines())


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


def _insight_spec(
    kind: str, models: dict[str, Any], dataset: Any, options: dict[str, Any]
) -> dict[str, Any]:
    dataset_fields = {
        key: options.pop(key)
        for key in ("target", "features", "validation_fraction", "format", "split_seed")
        if key in options
    }
    dataset_spec = {**_dataset_spec(dataset), **dataset_fields}
    return {"kind": kind, **models, "dataset": dataset_spec, **options}


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
