"""The coordinator's HTTP API: :func:`create_app` builds the FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

import scaleml
from scaleml.config import Settings, get_settings
from scaleml.coordinator.api._guards import BodyGuard, validation_error
from scaleml.coordinator.api.routes import events, health, jobs
from scaleml.coordinator.service import Coordinator


def create_app(
    settings: Settings | None = None,
    *,
    coordinator: Coordinator | None = None,
    run_jobs: bool = True,
) -> FastAPI:
    """The coordinator's FastAPI app (OpenAPI at ``/docs``).

    Args:
        settings: scaleml settings; read from the environment when omitted.
        coordinator: the engine behind the API; default a new one on ``settings``.
        run_jobs: start the engine's loop with the app (False: an API that only queues).
    """
    coordinator = coordinator or Coordinator(settings or get_settings())
    limits = coordinator.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_jobs:
            coordinator.start()
        try:
            yield
        finally:
            await run_in_threadpool(coordinator.stop)

    app = FastAPI(
        title="scaleml coordinator",
        version=scaleml.__version__,
        description="Jobs (training, boosting, searches) that outlive their clients.",
        lifespan=lifespan,
    )
    app.state.coordinator = coordinator
    app.add_middleware(
        BodyGuard,
        max_bytes=limits.coordinator_max_body_bytes,
        timeout_s=limits.coordinator_body_timeout_s,
    )
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(jobs.router)
    app.include_router(events.router)
    app.include_router(health.router)
    return app
