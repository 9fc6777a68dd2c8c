"""The app factory and its error handlers (statuses from ``_errors.http_error``)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import scaleml
from scaleml.config import Settings
from scaleml.gateway._access import AccessLog
from scaleml.gateway._batcher import BatcherClosed, QueueFull
from scaleml.gateway._contract import RequestError
from scaleml.gateway._errors import GatewayError, error_body, error_response
from scaleml.gateway._fastlane import FastLane
from scaleml.gateway._gateway import Gateway
from scaleml.gateway._models import ModelSpec
from scaleml.gateway.api.routes import (
    drift,
    explain,
    health,
    mlflow_scoring,
    model_config,
    v2,
)

log = logging.getLogger("scaleml.gateway")


def create_app(
    models: Sequence[str | ModelSpec],
    settings: Settings,
    *,
    scheduler_address: str | None = None,
) -> FastAPI:
    """A FastAPI app serving ``models`` (``NAME[@alias|/version]``) from the MLflow registry.

    Models load after startup (``/v2/health/ready`` says when); the dask backend connects to
    ``scheduler_address`` (else ``settings.scheduler``).
    """
    specs = [m if isinstance(m, ModelSpec) else ModelSpec.parse(m) for m in models]
    gateway = Gateway(specs, settings, scheduler_address=scheduler_address)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="scaleml gateway",
        version=scaleml.__version__,
        description="Registered MLflow models over MLflow's scoring protocol and the Open "
        "Inference Protocol v2, batched across Dask workers.",
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.include_router(mlflow_scoring.router)
    app.include_router(v2.router)
    app.include_router(model_config.router)
    app.include_router(explain.router)
    app.include_router(health.router)
    app.include_router(drift.router)
    _add_error_handlers(app)
    if settings.gateway_fast_lane:
        app.add_middleware(FastLane, gateway=gateway)
    app.add_middleware(AccessLog, metrics=gateway.metrics, buffer=gateway.access_log)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error goes through ``http_error`` (the one mapping to HTTP statuses) and
    ``error_body`` (MLflow's body, or the v2 body under ``/v2``)."""

    async def domain_error(request: Request, exc: Exception) -> Response:
        status, headers, body = error_response(request.url.path, exc)
        return Response(body, status, headers, media_type="application/json")

    for error in (GatewayError, RequestError, QueueFull, BatcherClosed, Exception):
        app.add_exception_handler(error, domain_error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        body = json.dumps(error_body(request.url.path, "INVALID_PARAMETER_VALUE", message))
        return Response(body, 422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, exc: StarletteHTTPException) -> Response:
        code = "RESOURCE_DOES_NOT_EXIST" if exc.status_code == 404 else "BAD_REQUEST"
        body = json.dumps(error_body(request.url.path, code, str(exc.detail)))
        return Response(body, exc.status_code, exc.headers, media_type="application/json")
