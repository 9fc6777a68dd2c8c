"""Structured access log: one JSON line per request on the ``scaleml.gateway.access`` logger,
plus the per-model request metrics.

Lines are handed to ``logging`` in batches (every ``flush_s`` seconds, or every ``max_lines``):
a logging call per request cost about a fifth of the event loop's time at 10,000 requests/s.
Each record's message is therefore one or more lines, each a complete JSON object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from scaleml.gateway._metrics import GatewayMetrics

access_log = logging.getLogger("scaleml.gateway.access")


class AccessLogBuffer:
    """Collects access-log lines and writes them to ``scaleml.gateway.access`` in batches."""

    def __init__(self, flush_s: float = 0.2, max_lines: int = 1000) -> None:
        self.flush_s = flush_s
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, line: str) -> None:
        """Queue one line; written within ``flush_s`` seconds."""
        self._lines.append(line)
        if len(self._lines) >= self.max_lines:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_s, self.flush)

    def flush(self) -> None:
        """Write the queued lines now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            lines, self._lines = self._lines, []
            access_log.info("\n".join(lines))


class AccessLog:
    """ASGI middleware: access-log line and request metrics (by model, protocol, status)."""

    def __init__(self, app: Any, metrics: GatewayMetrics, buffer: AccessLogBuffer) -> None:
        self.app = app
        self.metrics = metrics
        self.buffer = buffer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            state = scope.get("state") or {}
            model = state.get("model")
            path = scope["path"]
            route = state.get("route")
            if model is not None and route is not None:  # an explanation route
                self.metrics.explain_requests.labels(model, route, str(status)).inc()
                self.metrics.explain_latency.labels(model, route).observe(seconds)
            elif model is not None:
                protocol = "v2" if path.startswith("/v2") else "mlflow"
                self.metrics.requests.labels(model, protocol, str(status)).inc()
                self.metrics.latency.labels(model).observe(seconds)
                self.metrics.dashboard.request(model, seconds, status)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                record = {
                    "ts": round(time.time(), 3),
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "model": model,
                    "version": state.get("version"),
                    "client": f"{client[0]}:{client[1]}" if client else None,
                }
                self.buffer.add(json.dumps(record, separators=(",", ":")))
