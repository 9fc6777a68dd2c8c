"""Served models: ``NAME[@alias|/version]`` resolved in the MLflow registry, the loaded version
with its input schema and batcher, and the atomic switch to a new version."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaleml.config import Settings
from scaleml.gateway._backends import ModelHandle
from scaleml.gateway._batcher import Batcher, BatcherClosed
from scaleml.gateway._contract import InputSchema, Rows
from scaleml.gateway._errors import Unavailable
from scaleml.gateway._metrics import GatewayMetrics

log = logging.getLogger("scaleml.gateway")
_SPEC = re.compile(r"^(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))?$")


@dataclass(frozen=True)
class ModelSpec:
    """What to serve: a registered model and an alias (followed) or a version (fixed)."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """``NAME`` (= ``NAME@champion``), ``NAME@alias`` or ``NAME/version`` (a leading
        ``models:/`` is accepted)."""
        match = _SPEC.match(text.strip().removeprefix("models:/"))
        if not match:
            raise ValueError(f"model must be NAME, NAME@alias or NAME/version, got {text!r}")
        version = match["version"]
        return cls(match["name"], None if version else (match["alias"] or "champion"), version)

    def __str__(self) -> str:
        return f"{self.name}/{self.version}" if self.version else f"{self.name}@{self.alias}"

    def resolve(self, settings: Settings) -> str:
        """The registered version this spec points at now (blocking: MLflow calls)."""
        from scaleml.errors import TrackingError
        from scaleml.tracking import alias_version, version_exists

        if self.version is not None:
            if not version_exists(self.name, self.version, settings=settings):
                raise TrackingError(f"no model version {self.name}/{self.version} in the registry")
            return self.version
        assert self.alias is not None
        return alias_version(self.name, self.alias, settings=settings)


@dataclass(eq=False)
class LoadedVersion:
    """One model version loaded by a backend, with its schema and its batcher."""

    version: str
    schema: InputSchema
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    handle: ModelHandle
    batcher: Batcher[Rows, Any]


class ServedModel:
    """A model the gateway serves; ``current`` is replaced in one step on a hot swap."""

    def __init__(self, spec: ModelSpec, settings: Settings, metrics: GatewayMetrics) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = settings
        self.metrics = metrics
        self.current: LoadedVersion | None = None
        metrics.track_model(
            self.name,
            lambda: self.current.batcher.queue_depth if self.current else 0,
            lambda: self.current.batcher.inflight if self.current else 0,
        )

    @property
    def ready(self) -> bool:
        return self.current is not None

    async def predict(self, rows: Rows) -> tuple[Any, str]:
        """Predict ``rows`` through the batcher; return the output and the version used."""
        for _ in range(3):
            loaded = self.current
            if loaded is None:
                raise Unavailable(f"model {self.name!r} is not loaded yet", headers=_RETRY)
            try:
                return await loaded.batcher.submit(rows, rows.n), loaded.version
            except BatcherClosed:  # swapped between our read and submit: use the new one
                await asyncio.sleep(0)
        raise Unavailable(f"model {self.name!r} is being swapped; retry", headers=_RETRY)

    async def switch_to(self, version: str, backend: Any) -> None:
        """Load ``version`` on the backend, switch to it, then drain the old version."""
        from scaleml.tracking import model_version_info

        info = await asyncio.to_thread(
            model_version_info, self.name, version, settings=self.settings
        )
        if info.input_kind != "columns":
            raise ValueError(
                f"model {self.name}/{version} has no column-based signature; log it with a "
                "signature (infer_signature on a DataFrame) to serve it"
            )
        schema = InputSchema.from_signature(info.inputs, info.flavors)
        handle = await backend.load(info.uri)
        loaded = LoadedVersion(
            version, schema, info.inputs, info.outputs, handle, self._batcher(handle, schema)
        )
        old, self.current = self.current, loaded
        self.metrics.serving(self.name, version, old.version if old else None)
        log.info("serving %s version %s", self.name, version)
        if old is not None:
            await old.batcher.close()
            await old.handle.unload()

    async def close(self) -> None:
        """Finish queued and in-flight requests, then unload."""
        if self.current is not None:
            await self.current.batcher.close()
            await self.current.handle.unload()

    def _batcher(self, handle: ModelHandle, schema: InputSchema) -> Batcher[Rows, Any]:
        names = schema.names

        async def predict(parts: list[Rows]) -> list[Any]:
            present = [n for n in names if all(n in p.columns for p in parts)]
            if len(parts) == 1:
                arrays = [parts[0].columns[n] for n in present]
            else:
                arrays = [np.concatenate([p.columns[n] for p in parts]) for n in present]
            output = await handle.predict(present, arrays)
            total = sum(p.n for p in parts)
            if len(output) != total:
                raise RuntimeError(f"the model returned {len(output)} predictions for {total} rows")
            return _split(output, [p.n for p in parts])

        settings = self.settings
        return Batcher(
            predict,
            max_batch_size=settings.gateway_max_batch_size,
            max_wait_ms=settings.gateway_max_wait_ms,
            max_queue=settings.gateway_max_queue,
            max_inflight=handle.capacity,
            on_batch=self.metrics.batch_recorder(self.name),
        )


_RETRY = {"Retry-After": "1"}


def _split(output: Any, sizes: Sequence[int]) -> list[Any]:
    if len(sizes) == 1:
        return [output]
    pieces, start = [], 0
    for size in sizes:
        end = start + size
        pieces.append(
            output.iloc[start:end] if isinstance(output, pd.DataFrame) else output[start:end]
        )
        start = end
    return pieces
