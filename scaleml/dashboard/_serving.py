"""The gateway's records: requests, rows, latency and batches per model, once a second.

A gateway serves thousands of requests a second; the dashboard gets one record per model and
version per second (``event: "second"``): requests, rows, batches, mean rows per batch and
latency percentiles (from at most :data:`MAX_SAMPLES` latencies of that second). Counting is
a few dict updates on the gateway's event loop; :meth:`ServingEvents.run` publishes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from scaleml.dashboard._events import publish

MAX_SAMPLES = 2048


@dataclass
class _Second:
    requests: int = 0
    errors: int = 0
    rows: int = 0
    batches: int = 0
    batch_rows: int = 0
    latencies: list[float] = field(default_factory=list)


class ServingEvents:
    """Counts one gateway's work per model and publishes it every ``interval_s`` seconds."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self.versions: dict[str, str] = {}
        self._seconds: dict[str, _Second] = {}

    def serving(self, model: str, version: str) -> None:
        """``model`` now serves ``version``."""
        self.versions[model] = str(version)

    def request(self, model: str, seconds: float, status: int) -> None:
        """One prediction request to ``model`` took ``seconds`` and answered ``status``."""
        second = self._seconds.setdefault(model, _Second())
        second.requests += 1
        second.errors += status >= 400
        if len(second.latencies) < MAX_SAMPLES:
            second.latencies.append(seconds)

    def batch(self, model: str, rows: int, requests: int) -> None:
        """One batch of ``rows`` rows (``requests`` requests) went to ``model``."""
        second = self._seconds.setdefault(model, _Second())
        second.batches += 1
        second.rows += rows

    def flush(self, client: Any = None) -> list[dict[str, Any]]:
        """Publish (and return) one record per model that had work since the last flush."""
        seconds, self._seconds = self._seconds, {}
        records = []
        for model, s in seconds.items():
            latencies = sorted(s.latencies)
            record = {
                "event": "second",
                "model": model,
                "version": self.versions.get(model, ""),
                "requests": s.requests / self.interval_s,
                "errors": s.errors,
                "rows": s.rows / self.interval_s,
                "batches": s.batches,
                "mean_batch_rows": s.rows / s.batches if s.batches else None,
                **{
                    f"p{q}_ms": _percentile(latencies, q / 100) * 1000 if latencies else None
                    for q in (50, 95, 99)
                },
            }
            publish("serving", record, client)
            records.append(record)
        return records

    async def run(self, client: Any) -> None:
        """Publish through ``client`` every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            self.flush(client)


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
