"""Follow the registry: load each model at start, and switch when its alias moves."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Sequence
from typing import Any

from scaleml.gateway._models import ServedModel

log = logging.getLogger("scaleml.gateway")


class Watcher:
    """Polls the registry every ``poll_interval_s`` for every served model.

    A model whose alias is not set yet (or whose load failed) is retried at every poll; the
    gateway stays live but not ready until every model is loaded. When an alias moves, the
    new version is loaded on all workers first, then switched to, then the old one drained.
    """

    def __init__(self, models: Sequence[ServedModel], backend: Any, poll_interval_s: float) -> None:
        self.models = list(models)
        self.backend = backend
        self.poll_interval_s = poll_interval_s
        self._stop = asyncio.Event()
        self._frozen = False

    async def run(self) -> None:
        """Poll until :meth:`stop`; never raises (failures are logged and retried)."""
        while not self._stop.is_set():
            await self.check_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_interval_s)

    async def check_once(self) -> None:
        """One poll of every model (and of the cluster's workers)."""
        try:
            await self.backend.refresh()
        except Exception as exc:
            log.warning("cannot refresh the backend: %s", exc)
        for model in self.models:
            try:
                version = await asyncio.to_thread(model.spec.resolve, model.settings)
                if model.current is None or model.current.version != version:
                    await model.switch_to(version, self.backend)
                    if self._frozen:
                        gc.freeze()
            except Exception as exc:
                log.warning("cannot serve %s yet: %s", model.spec, exc)
        if not self._frozen and all(m.ready for m in self.models):
            # Full collections of what MLflow, pandas and the models allocated take ~150 ms
            # and stall every request: collect once, then keep it out of the collector's sight.
            gc.collect()
            gc.freeze()
            self._frozen = True

    def stop(self) -> None:
        """End :meth:`run` after the current poll."""
        self._stop.set()
