"""A thin ASGI lane for the two prediction routes, in front of FastAPI.

FastAPI's routing, dependency solving and middleware cost about as much as the rest of a
1-row request together; on a 2-core machine that halves throughput. This lane serves
``POST /invocations``, ``/models/{name}/invocations`` and ``/v2/models/{name}[/versions/{v}]
/infer`` with the same predict core (``_protocols``), token check, body limit and error
mapping (``_errors.http_error``) as the FastAPI routes, which stay registered and document
these endpoints at ``/docs``. Every other request goes to FastAPI.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from scaleml.gateway._binary import HEADER
from scaleml.gateway._errors import ClientGone, PayloadTooLarge, error_response
from scaleml.gateway._gateway import Gateway
from scaleml.gateway._protocols import mlflow_invocations, v2_infer
from scaleml.gateway.api.deps import body_timeout, check_token, too_large

log = logging.getLogger("scaleml.gateway")
_ROUTES = re.compile(
    r"^(?:/invocations|/models/(?P<name>[^/]+)/invocations"
    r"|/v2/models/(?P<v2name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer)$"
)
_JSON = [(b"content-type", b"application/json")]
_IHCL = HEADER.lower().encode()


class FastLane:
    """ASGI middleware: prediction requests are answered here, the rest passed to ``app``."""

    def __init__(self, app: Any, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _ROUTES.match(scope["path"])
            if match is not None:
                await self._predict(match, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _predict(self, match: re.Match[str], scope: Any, receive: Any, send: Any) -> None:
        gateway = self.gateway
        state = scope.setdefault("state", {})
        headers = _headers(scope)
        extra: list[tuple[bytes, bytes]] = []
        kind = _JSON
        try:
            _check_token(gateway, headers.get(b"authorization"))
            body = await _read_body(receive, headers.get(b"content-length"), gateway)
            content_type = _media_type(headers.get(b"content-type"))
            v2_name = match["v2name"]
            if v2_name is None:
                name = match["name"] or _text(headers.get(b"x-model"))
                model = gateway.model(name)
                state["model"] = model.name
                payload, version = await mlflow_invocations(gateway, model, content_type, body)
                extra.append((b"x-model-version", version.encode()))
            else:
                model = gateway.model(v2_name)
                state["model"] = model.name
                payload, version, header_length = await v2_infer(
                    gateway, model, match["version"], content_type, body, _text(headers.get(_IHCL))
                )
                if header_length is not None:
                    kind = [(b"content-type", b"application/octet-stream")]
                    extra.append((_IHCL, str(header_length).encode()))
            state["version"] = version
            status = 200
        except Exception as exc:
            status, error_headers, payload = error_response(scope["path"], exc)
            extra = [(k.lower().encode(), v.encode()) for k, v in error_headers.items()]
            kind = _JSON
        if status == ClientGone.status:
            return
        response_headers = [*kind, (b"content-length", str(len(payload)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})


def _headers(scope: Any) -> dict[bytes, bytes]:
    return {key.lower(): value for key, value in scope["headers"]}


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _media_type(value: bytes | None) -> str | None:
    if not value:
        return None
    return value.decode("latin-1").split(";", 1)[0].strip().lower()


def _check_token(gateway: Gateway, authorization: bytes | None) -> None:
    if gateway.settings.gateway_token is not None:
        check_token(gateway, _text(authorization))


async def _read_body(receive: Any, declared: bytes | None, gateway: Gateway) -> bytes:
    limit = gateway.settings.gateway_max_body_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    timeout_s = gateway.settings.gateway_request_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone("the client closed the connection")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(too_large(size, limit))
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        raise body_timeout(timeout_s) from None
