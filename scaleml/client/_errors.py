"""The client's exceptions, one per way the coordinator can refuse a request."""

from __future__ import annotations

from typing import Any

import httpx

from scaleml.errors import ScalemlError


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


def error_from(response: httpx.Response) -> CoordinatorError:
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
