"""The gateway's state: served models, backend, watcher, metrics; predict with a time limit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from scaleml.config import Settings
from scaleml.gateway._access import AccessLogBuffer
from scaleml.gateway._backends import DaskBackend, LocalBackend
from scaleml.gateway._batcher import QueueFull
from scaleml.gateway._contract import Rows
from scaleml.gateway._errors import ModelNotFound, PredictTimeout, Unavailable
from scaleml.gateway._metrics import GatewayMetrics
from scaleml.gateway._models import ModelSpec, ServedModel
from scaleml.gateway._monitoring import register_metrics
from scaleml.gateway._watcher import Watcher

log = logging.getLogger("scaleml.gateway")


def choose_backend(settings: Settings, scheduler_address: str | None) -> str:
    """``local`` or ``dask``: the setting, or for ``auto`` dask when a scheduler is known."""
    if settings.gateway_backend != "auto":
        return settings.gateway_backend
    return "dask" if (scheduler_address or settings.scheduler) else "local"


class Gateway:
    """Everything one gateway process serves; created by the app factory, started in its
    lifespan."""

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        settings: Settings,
        *,
        scheduler_address: str | None = None,
    ) -> None:
        names = [s.name for s in specs]
        if not specs or len(set(names)) != len(names):
            raise ValueError(f"serve at least one model, each name once; got {names}")
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.access_log = AccessLogBuffer()
        self.models = {s.name: ServedModel(s, settings, self.metrics) for s in specs}
        violations = register_metrics(self.metrics.registry, self._monitors)
        for served in self.models.values():
            served.violations = violations
        self.backend_name = choose_backend(settings, scheduler_address)
        if self.backend_name == "dask":
            address = scheduler_address or settings.scheduler
            if not address:
                raise ValueError("the dask backend needs a scheduler address")
            self.backend: Any = DaskBackend(settings, address)
        else:
            self.backend = LocalBackend(settings)
        self.watcher = Watcher(
            list(self.models.values()), self.backend, settings.gateway_poll_interval_s
        )
        self._task: asyncio.Task[None] | None = None
        self._dashboard: asyncio.Task[None] | None = None

    def _monitors(self) -> list[Any]:
        return [
            m.current.monitor
            for m in self.models.values()
            if m.current is not None and m.current.monitor is not None
        ]

    @property
    def ready(self) -> bool:
        """Every model is loaded."""
        return all(m.ready for m in self.models.values())

    def model(self, name: str | None) -> ServedModel:
        """The model called ``name``; with ``None``, the only model served."""
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            raise ModelNotFound(
                f"several models are served ({', '.join(self.models)}): name one with the "
                "X-Model header or POST /models/{name}/invocations"
            )
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFound(
                f"model {name!r} is not served here; served: {', '.join(self.models)}"
            ) from None

    async def predict(
        self, model: ServedModel, rows: Rows, *, proba: bool = False
    ) -> tuple[Any, str]:
        """Predict within ``gateway_request_timeout_s`` (with ``proba``: labels,
        probabilities and classes)."""
        try:
            async with asyncio.timeout(self.settings.gateway_request_timeout_s):
                return await model.predict(rows, proba)
        except QueueFull as exc:
            raise Unavailable(str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        except TimeoutError:
            raise PredictTimeout(
                f"no prediction within {self.settings.gateway_request_timeout_s:g} s; "
                "retry, or send fewer rows"
            ) from None

    async def start(self) -> None:
        """Connect the backend and start loading models (readiness follows)."""
        await self.backend.start()
        self._task = asyncio.get_running_loop().create_task(self.watcher.run())
        if isinstance(self.backend, DaskBackend):  # the serving page of the Dask dashboard
            publishing = self.metrics.dashboard.run(self.backend.client)
            self._dashboard = asyncio.get_running_loop().create_task(publishing)

    async def stop(self) -> None:
        """Stop watching, finish queued and in-flight requests, disconnect."""
        self.watcher.stop()
        for task in (self._task, self._dashboard):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*(m.close() for m in self.models.values()), return_exceptions=True)
        await self.backend.close()
        self.access_log.flush()
