"""The gateway's per-second records: counted, aggregated, published, drawn."""

from __future__ import annotations

import time

import httpx
from distributed import Client

from scaleml.dashboard import ServingEvents
from scaleml.gateway._metrics import GatewayMetrics


def test_a_second_of_serving_becomes_one_record_per_model(client: Client, pages: str) -> None:
    events = ServingEvents()
    events.serving("churn", "3")
    for i in range(100):
        events.request("churn", seconds=(i + 1) / 1000, status=200 if i < 98 else 503)
    for _ in range(10):
        events.batch("churn", rows=40, requests=10)
    events.request("fraud", seconds=0.002, status=200)
    records = {r["model"]: r for r in events.flush(client)}
    churn = records["churn"]
    assert (churn["version"], churn["requests"], churn["errors"]) == ("3", 100.0, 2)
    assert (churn["rows"], churn["batches"], churn["mean_batch_rows"]) == (400.0, 10, 40.0)
    assert (churn["p50_ms"], churn["p95_ms"], churn["p99_ms"]) == (51.0, 96.0, 100.0)
    assert records["fraud"]["version"] == "" and records["fraud"]["mean_batch_rows"] is None
    assert events.flush(client) == []  # nothing served since: nothing sent

    def table() -> dict:
        return httpx.get(f"{pages}api/serving.json", timeout=60).json()

    deadline = time.monotonic() + 30
    while "churn" not in table()["model"] and time.monotonic() < deadline:
        time.sleep(0.1)
    served = table()
    row = served["model"].index("churn")
    assert (served["version"][row], served["requests"][row], served["p95_ms"][row]) == (
        "3",
        100.0,
        96.0,
    )


def test_the_gateways_metrics_feed_the_serving_records(client: Client) -> None:
    metrics = GatewayMetrics()
    metrics.serving("churn", "4", None)
    metrics.batch_recorder("churn")(64, 8)
    metrics.dashboard.request("churn", 0.004, 200)  # what the access middleware calls
    [record] = metrics.dashboard.flush(client)
    assert (record["model"], record["version"], record["rows"], record["batches"]) == (
        "churn",
        "4",
        64.0,
        1,
    )
