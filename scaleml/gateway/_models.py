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
from scaleml.gateway._contract import InputSchema, RequestError, Rows
from scaleml.gateway._errors import Unavailable
from scaleml.gateway._metrics import GatewayMetrics
from scaleml.gateway._monitoring import VersionMonitor, load_monitor

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
    batcher: Batcher[tuple[Rows, bool], Any]
    monitor: VersionMonitor | None = None
    explainer: Batcher[Rows, Any] | None = None
    """Batches explanation requests like ``batcher`` batches predictions."""

    @property
    def classes(self) -> list[Any] | None:
        """The classes of ``predict_proba``'s columns; None: the model has no probabilities."""
        return self.handle.classes


class ServedModel:
    """A model the gateway serves; ``current`` is replaced in one step on a hot swap."""

    def __init__(self, spec: ModelSpec, settings: Settings, metrics: GatewayMetrics) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = settings
        self.metrics = metrics
        self.current: LoadedVersion | None = None
        self.violations: Any = None  # the gateway's contract violations counter
        metrics.track_model(
            self.name,
            lambda: self.current.batcher.queue_depth if self.current else 0,
            lambda: self.current.batcher.inflight if self.current else 0,
        )

    @property
    def ready(self) -> bool:
        return self.current is not None

    async def predict(self, rows: Rows, proba: bool = False) -> tuple[Any, str]:
        """Predict ``rows`` through the batcher; return the output and the version used.
        With ``proba`` the output is ``(labels, probabilities, classes)``."""
        for _ in range(3):
            loaded = self.current
            if loaded is None:
                raise Unavailable(f"model {self.name!r} is not loaded yet", headers=_RETRY)
            if proba and loaded.classes is None:
                raise RequestError(
                    f"model {self.name!r} version {loaded.version} has no predict_proba",
                    "probabilities",
                )
            if loaded.monitor is not None:
                loaded.monitor.check(rows)
            try:
                return await loaded.batcher.submit((rows, proba), rows.n), loaded.version
            except BatcherClosed:  # swapped between our read and submit: use the new one
                await asyncio.sleep(0)
        raise Unavailable(f"model {self.name!r} is being swapped; retry", headers=_RETRY)

    async def explain(self, rows: Rows) -> tuple[Any, str]:
        """SHAP contributions of ``rows`` through the explanation batcher; return them and
        the version used."""
        for _ in range(3):
            loaded = self.current
            if loaded is None or loaded.explainer is None:
                raise Unavailable(f"model {self.name!r} is not loaded yet", headers=_RETRY)
            try:
                return await loaded.explainer.submit(rows, rows.n), loaded.version
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
        monitor = await asyncio.to_thread(
            load_monitor, self.name, version, self.settings, self.violations
        )
        handle = await backend.load(info.uri)
        if hasattr(handle, "on_inprocess"):
            handle.on_inprocess = self.metrics.inprocess_batches.labels(self.name).inc
        from scaleml.gateway._explain_batches import explain_batcher

        batcher = self._batcher(handle, schema, monitor)
        explainer = explain_batcher(handle, schema, self.settings, self.metrics, self.name)
        loaded = LoadedVersion(
            version, schema, info.inputs, info.outputs, handle, batcher, monitor, explainer
        )
        old, self.current = self.current, loaded
        self.metrics.serving(self.name, version, old.version if old else None)
        log.info("serving %s version %s", self.name, version)
        if old is not None:
            await old.batcher.close()
            if old.explainer is not None:
                await old.explainer.close()
            await old.handle.unload()

    async def close(self) -> None:
        """Finish queued and in-flight requests, then unload."""
        if self.current is not None:
            await self.current.batcher.close()
            if self.current.explainer is not None:
                await self.current.explainer.close()
            await self.current.handle.unload()

    def _batcher(
        self, handle: ModelHandle, schema: InputSchema, monitor: VersionMonitor | None = None
    ) -> Batcher[tuple[Rows, bool], Any]:
        names = schema.names
        drift = monitor if monitor is not None and monitor.window is not None else None

        async def predict(jobs: list[tuple[Rows, bool]]) -> list[Any]:
            parts = [rows for rows, _ in jobs]
            proba = any(wants for _, wants in jobs)
            present = [n for n in names if all(n in p.columns for p in parts)]
            if len(parts) == 1:
                arrays = [parts[0].columns[n] for n in present]
            else:
                arrays = [np.concatenate([p.columns[n] for p in parts]) for n in present]
            output = await handle.predict(present, arrays, proba)
            labels, probabilities = output if proba else (output, None)
            total = sum(p.n for p in parts)
            if len(labels) != total:
                raise RuntimeError(f"the model returned {len(labels)} predictions for {total} rows")
            if drift is not None:
                drift.observe(dict(zip(present, arrays, strict=True)), labels)
            sizes = [p.n for p in parts]
            if probabilities is None:
                return _split(labels, sizes)
            pairs = zip(_split(labels, sizes), _split(probabilities, sizes), strict=True)
            return [
                (label, probability, handle.classes) if wants else label
                for (label, probability), (_, wants) in zip(pairs, jobs, strict=True)
            ]

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
