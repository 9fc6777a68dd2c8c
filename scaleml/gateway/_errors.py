"""Domain errors of the gateway and the one mapping of errors to HTTP responses, used by the
FastAPI app (``scaleml.gateway.app``) and by the fast lane (``_fastlane``) alike."""

from __future__ import annotations

import json
import logging

log = logging.getLogger("scaleml.gateway")
MAX_MESSAGE_CHARS = 1000


class GatewayError(Exception):
    """Base of the gateway's errors: an HTTP ``status`` and an MLflow-style ``error_code``."""

    status = 500
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class Unauthorized(GatewayError):
    """No or a wrong bearer token."""

    status = 401
    error_code = "UNAUTHENTICATED"


class ModelNotFound(GatewayError):
    """The request names a model (or version) this gateway does not serve."""

    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class PayloadTooLarge(GatewayError):
    """The body is larger than ``gateway_max_body_bytes``."""

    status = 413
    error_code = "REQUEST_LIMIT_EXCEEDED"


class UnsupportedMediaType(GatewayError):
    """A content type the protocol does not take."""

    status = 415
    error_code = "BAD_REQUEST"


class RequestTimeout(GatewayError):
    """The client declared a body and did not send it within the time limit."""

    status = 408
    error_code = "REQUEST_TIMEOUT"


class Unavailable(GatewayError):
    """Not ready, overloaded or no worker left: retry later."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"


class PredictTimeout(GatewayError):
    """The request was not answered within ``gateway_request_timeout_s``."""

    status = 504
    error_code = "DEADLINE_EXCEEDED"


class ClientGone(GatewayError):
    """The client disconnected before its request was read (nginx's 499, never sent)."""

    status = 499
    error_code = "CLIENT_CLOSED_REQUEST"


def http_error(exc: Exception) -> tuple[int, str, str, dict[str, str]]:
    """The one mapping of the gateway's errors to HTTP: status, MLflow error code, message,
    headers. Anything unexpected is a 500 (never caused by a request that passed the input
    contract's checks, which are 4xx)."""
    from scaleml.gateway._batcher import BatcherClosed, QueueFull
    from scaleml.gateway._contract import RequestError

    if isinstance(exc, GatewayError):
        return exc.status, exc.error_code, exc.message, exc.headers
    if isinstance(exc, RequestError):
        return 400, "INVALID_PARAMETER_VALUE", exc.message, {}
    if isinstance(exc, QueueFull):
        return 503, Unavailable.error_code, str(exc), {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, BatcherClosed):
        return 503, Unavailable.error_code, str(exc), {"Retry-After": "1"}
    message = f"the model failed on this request: {type(exc).__name__}: {exc}"
    return 500, "INTERNAL_ERROR", message[:500], {}


def error_body(path: str, error_code: str, message: str) -> dict[str, str]:
    """MLflow's ``{"error_code", "message"}``, or the v2 protocol's ``{"error"}`` under
    ``/v2``."""
    if path.startswith("/v2"):
        return {"error": message}
    return {"error_code": error_code, "message": message}


def error_response(path: str, exc: Exception) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and JSON body of the answer to ``exc`` on ``path``.

    The body is ASCII JSON (a lone surrogate from the request is escaped, never a failure to
    encode) and its message at most :data:`MAX_MESSAGE_CHARS` long (an error never echoes a
    big input). Unexpected errors are logged with their traceback; client errors are not
    (the access log has their line).
    """
    status, code, message, headers = http_error(exc)
    if status >= 500 and status not in (503, 504):
        log.error("prediction failed: %s", exc, exc_info=exc)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "\u2026"
    body = json.dumps(error_body(path, code, message)).encode()
    return status, headers, body
