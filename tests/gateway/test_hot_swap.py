"""Readiness and hot swaps: a gateway started before its alias exists, then an alias move
under concurrent load (dask backend, the session's workers)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from distributed import Client
from mlflow import MlflowClient

from tests.gateway.conftest import frame, log_and_register, pyfunc_predict, train_sklearn

pytestmark = pytest.mark.slow
T = 10.0


def test_ready_only_after_loading_then_a_hot_swap_under_load_fails_no_request(
    gateway_factory, store, client: Client
) -> None:
    name = f"swap-{uuid.uuid4().hex[:6]}"
    log_and_register(store, train_sklearn(seed=0), name)  # version 1, alias "champion"
    log_and_register(store, train_sklearn(seed=3), name)  # version 2
    process = gateway_factory([f"{name}@live"], store, "dask", scheduler=client.scheduler.address)
    url = process.url
    # Live at once, not ready: the alias it follows does not exist yet.
    assert httpx.get(f"{url}/v2/health/live", timeout=T).json() == {"live": True}
    not_ready = httpx.get(f"{url}/v2/health/ready", timeout=T)
    assert not_ready.status_code == 503 and not_ready.json() == {"ready": False}
    assert httpx.get(f"{url}/ping", timeout=T).status_code == 503
    assert httpx.get(f"{url}/v2/models/{name}/ready", timeout=T).status_code == 503
    early = httpx.post(f"{url}/invocations", json={"inputs": {"f0": [1.0]}}, timeout=T)
    assert early.status_code == 503 and "not loaded" in early.json()["message"]

    registry = MlflowClient(store.mlflow_tracking_uri)
    registry.set_registered_model_alias(name, "live", "1")
    process.wait_ready(60)
    assert httpx.get(f"{url}/v2/models/{name}/ready", timeout=T).json()["ready"] is True

    X = frame(32, seed=21)
    v1 = pyfunc_predict(store, f"models:/{name}/1", X)
    v2 = pyfunc_predict(store, f"models:/{name}/2", X)
    assert v1 != v2
    answers: list[tuple[int, str | None, float]] = []
    new_version_seen: list[float] = []

    async def load(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=T) as http:

            async def user(i: int) -> None:
                rows = X.iloc[i * 4 : i * 4 + 4]
                payload = json.dumps({"dataframe_split": rows.to_dict(orient="split")})
                headers = {"Content-Type": "application/json"}
                while time.monotonic() < deadline:
                    sent = time.monotonic()
                    answer = await http.post(f"{url}/invocations", content=payload, headers=headers)
                    body = answer.json()
                    answers.append((answer.status_code, body.get("model_version"), sent))
                    if body.get("model_version") == "2":
                        new_version_seen.append(time.monotonic())
                    if answer.status_code == 200:
                        expected = (v1 if body["model_version"] == "1" else v2)[i * 4 : i * 4 + 4]
                        assert body["predictions"] == expected

            async def swap() -> None:
                await asyncio.sleep(0.5)
                await asyncio.to_thread(registry.set_registered_model_alias, name, "live", "2")

            await asyncio.gather(swap(), *(user(i) for i in range(8)))

    asyncio.run(load(6.0))
    statuses = {status for status, _, _ in answers}
    assert statuses == {200}, f"failed requests during the swap: {statuses}"
    versions = [version for _, version, _ in answers]
    assert "1" in versions and versions[-1] == "2", "the new version is served afterwards"
    # Causality: a request sent after an answer from version 2 arrived was submitted after the
    # switch, so it must be answered by version 2.
    later = {version for _, version, sent in answers if sent > min(new_version_seen)}
    assert later == {"2"}, "a request sent after the switch was answered by the old version"
    metadata = httpx.get(f"{url}/v2/models/{name}", timeout=T).json()
    assert metadata["versions"] == ["2"]
    metrics = httpx.get(f"{url}/metrics", timeout=T).text
    assert f'scaleml_gateway_model_version{{model="{name}",version="2"}} 1.0' in metrics
    assert 'version="1"}' not in metrics.split(f'model="{name}",')[-1].split("\n")[0]
