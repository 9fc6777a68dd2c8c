"""Request guards in front of the coordinator's routes: a body-size limit and a deadline for
receiving a body, and short, safe validation errors.

:class:`BodyGuard` reads a request's body before any route sees it: a body larger than
``max_bytes`` gets 413 (at once when its ``Content-Length`` says so), one not received within
``timeout_s`` gets 408, and the connection is closed, so a client that declares a body and
never sends it holds nothing for long.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_MAX_ERRORS = 20  # validation errors shown per response
_MAX_MSG = 500  # characters of one error message
_MAX_LOC = 100  # characters of one part of an error's location
_MAX_LOC_PARTS = 16


class BodyGuard:
    """ASGI middleware: 413 for bodies over ``max_bytes``, 408 for bodies not received within
    ``timeout_s`` seconds (both with ``Connection: close``)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is None and not chunked:
            await self.app(scope, receive, send)  # no body
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _refuse(send, 413, self._too_large())
            return
        body = await self._read(receive, send)
        if body is None:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once the request was answered (or the client left)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                await _refuse(
                    send, 408, f"the request body was not received within {self.timeout_s:g} s"
                )
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, self._too_large())
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> str:
        return (
            f"the request body is larger than {self.max_bytes} bytes "
            "(SCALEML_COORDINATOR_MAX_BODY_BYTES)"
        )


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with each error's ``type``, ``loc`` and ``msg``, cut short: never the input itself
    (it may be large, or hold NaN, which JSON cannot carry)."""
    assert isinstance(exc, RequestValidationError)
    errors = [_short(error) for error in exc.errors()[:_MAX_ERRORS]]
    return JSONResponse(status_code=422, content={"detail": errors})


def _short(error: Any) -> dict[str, Any]:
    loc = [part if isinstance(part, int) else str(part)[:_MAX_LOC] for part in error["loc"]]
    msg = str(error.get("msg", ""))
    if len(msg) > _MAX_MSG:
        msg = msg[:_MAX_MSG] + "..."
    return {"type": str(error.get("type", "value_error")), "loc": loc[:_MAX_LOC_PARTS], "msg": msg}
