"""Dependencies shared by the routes: the gateway, the bearer token, a size-limited body.

The prediction routes take one dependency, :data:`PredictDep`, that checks the token, reads
the body within its limit and notes the content type: each dependency FastAPI resolves costs
time on every request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from scaleml.gateway._errors import ClientGone, PayloadTooLarge, Unauthorized
from scaleml.gateway._gateway import Gateway


async def get_gateway(request: Request) -> Gateway:
    """The gateway this app serves."""
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def require_token(request: Request) -> None:
    """With ``SCALEML_GATEWAY_TOKEN`` set, require ``Authorization: Bearer <token>``."""
    check_token(request.app.state.gateway, request.headers.get("authorization"))


Authorized = Depends(require_token)


@dataclass(slots=True)
class PredictRequest:
    """An authorized prediction request: its gateway, body and content type."""

    gateway: Gateway
    body: bytes
    content_type: str | None


async def predict_request(request: Request) -> PredictRequest:
    """Check the token, then read the body (413 beyond ``gateway_max_body_bytes``)."""
    gateway: Gateway = request.app.state.gateway
    check_token(gateway, request.headers.get("authorization"))
    body = await read_body(request, gateway.settings.gateway_max_body_bytes)
    return PredictRequest(gateway, body, media_type(request))


PredictDep = Annotated[PredictRequest, Depends(predict_request)]


def check_token(gateway: Gateway, authorization: str | None) -> None:
    """Raise :class:`Unauthorized` unless ``authorization`` carries the gateway's token."""
    token = gateway.settings.gateway_token
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), token):
        raise Unauthorized(
            "missing or wrong bearer token: send 'Authorization: Bearer <SCALEML_GATEWAY_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with :class:`PayloadTooLarge` beyond ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large(int(declared), limit))
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(too_large(size, limit))
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone("the client closed the connection") from None
    return b"".join(chunks)


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
