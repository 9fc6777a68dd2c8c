"""Dependencies shared by the routes: the gateway, the bearer token, a size-limited body.

The prediction routes take one dependency, :data:`PredictDep`, that checks the token, reads
the body within its limit and notes the content type: each dependency FastAPI resolves costs
time on every request.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import ClientDisconnect

from scaleml.gateway._errors import ClientGone, PayloadTooLarge, RequestTimeout, Unauthorized
from scaleml.gateway._gateway import Gateway


async def get_gateway(request: Request) -> Gateway:
    """The gateway this app serves."""
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


# Documents the bearer token in the OpenAPI schema; the check itself is check_token's.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="gatewayToken",
    description="SCALEML_GATEWAY_TOKEN, when the gateway is started with one (else none).",
)
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def require_token(request: Request, _: BearerDoc) -> None:
    """With ``SCALEML_GATEWAY_TOKEN`` set, require ``Authorization: Bearer <token>``."""
    check_token(request.app.state.gateway, request.headers.get("authorization"))


Authorized = Depends(require_token)


@dataclass(slots=True)
class PredictRequest:
    """An authorized prediction request: its gateway, body and content type."""

    gateway: Gateway
    body: bytes
    content_type: str | None


async def predict_request(request: Request, _: BearerDoc) -> PredictRequest:
    """Check the token, then read the body (413 beyond ``gateway_max_body_bytes``)."""
    gateway: Gateway = request.app.state.gateway
    check_token(gateway, request.headers.get("authorization"))
    settings = gateway.settings
    body = await read_body(
        request, settings.gateway_max_body_bytes, settings.gateway_request_timeout_s
    )
    return PredictRequest(gateway, body, media_type(request))


PredictDep = Annotated[PredictRequest, Depends(predict_request)]


def check_token(gateway: Gateway, authorization: str | None) -> None:
    """Raise :class:`Unauthorized` unless ``authorization`` carries the gateway's token."""
    token = gateway.settings.gateway_token
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    # Headers arrive decoded as Latin-1: compare their raw bytes with the token's UTF-8 bytes
    # (compare_digest refuses non-ASCII str).
    given_bytes = given.strip().encode("latin-1", errors="replace")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given_bytes, token.encode()):
        raise Unauthorized(
            "missing or wrong bearer token: send 'Authorization: Bearer <SCALEML_GATEWAY_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The request body, refused with :class:`PayloadTooLarge` beyond ``limit`` bytes and with
    :class:`RequestTimeout` when it has not all arrived within ``timeout_s``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large(int(declared), limit))
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(too_large(size, limit))
                chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone("the client closed the connection") from None
    except TimeoutError:
        raise body_timeout(timeout_s) from None
    return b"".join(chunks)


def body_timeout(timeout_s: float) -> RequestTimeout:
    """The 408 for a body not received within ``timeout_s`` (the connection is closed)."""
    return RequestTimeout(
        f"the request body did not arrive within {timeout_s:g} s", headers={"Connection": "close"}
    )


def media_type(request: Request) -> str | None:
    """The content type without parameters, lower-cased (None when absent)."""
    value = request.headers.get("content-type")
    return value.split(";", 1)[0].strip().lower() if value else None


def too_large(size: int, limit: int) -> str:
    """The 413 message."""
    return (
        f"the body has {size:,} bytes, more than the limit of {limit:,}; "
        "send fewer rows per request"
    )
