"""Alias moves under traffic: after N moves under concurrent clients, every worker holds
exactly the version served (dask backend, the session's worker processes)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from distributed import Client
from mlflow import MlflowClient

from tests.gateway.conftest import (  # noqa: F401  (fixtures)
    frame,
    gateway_factory,
    log_and_register,
    store,
    train_sklearn,
)
from tests.security._gateway import T, served

pytestmark = pytest.mark.slow
MOVES = ["3", "2", "3", "2", "3"]
CLIENTS = 24
MAX_REQUESTS = 6000


def _held(prefix: str, dask_worker: Any) -> dict[str, list[str]]:
    """On a worker: the model versions under ``prefix`` its actors hold, and those alive in
    its memory at all."""
    from scaleml.gateway._host import ModelHost, loaded_models

    actors = [a.uri for a in dask_worker.state.actors.values() if isinstance(a, ModelHost)]
    return {
        "actors": sorted(uri for uri in actors if uri.startswith(prefix)),
        "alive": [uri for uri in loaded_models() if uri.startswith(prefix)],
    }


def _warm_up() -> None:
    """Import what loading a model needs (tens of seconds on a busy machine, once per worker
    process), so that the gateway's loads fit in their time limit."""
    import mlflow.sklearn  # noqa: F401

    import scaleml.tracking  # noqa: F401


def _wait_for_workers(client: Client, prefix: str, expected: list[str], timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while True:
        held = client.run(_held, prefix)
        if all(h == {"actors": expected, "alive": expected} for h in held.values()):
            return held
        if time.monotonic() > deadline:
            return held
        time.sleep(0.2)


def test_after_alias_moves_under_load_every_worker_holds_only_the_served_version(
    gateway_factory,  # noqa: F811
    store,  # noqa: F811
    client: Client,
) -> None:
    name = f"moves-{uuid.uuid4().hex[:6]}"
    for seed in (0, 1, 2):
        log_and_register(store, train_sklearn(seed=seed), name)
    registry = MlflowClient(store.mlflow_tracking_uri)
    registry.set_registered_model_alias(name, "live", "2")
    client.run(_warm_up)
    process = gateway_factory([f"{name}@live"], store, "dask", scheduler=client.scheduler.address)
    process.wait_ready(240)
    prefix = f"models:/{name}/"
    workers = client.run(_held, prefix)
    assert len(workers) == 2
    assert all(h["actors"] == [f"{prefix}2"] for h in workers.values()), workers

    payload = json.dumps({"dataframe_split": frame(4, seed=5).to_dict(orient="split")})
    statuses: list[int] = []
    moved: list[str] = []

    async def traffic_and_moves() -> None:
        done = asyncio.Event()
        async with httpx.AsyncClient(timeout=T) as http:

            async def user() -> None:
                while not done.is_set() and len(statuses) < MAX_REQUESTS:
                    answer = await http.post(
                        f"{process.url}/invocations",
                        content=payload,
                        headers={"Content-Type": "application/json"},
                    )
                    statuses.append(answer.status_code)

            async def mover() -> None:
                try:
                    for version in MOVES:
                        await asyncio.sleep(0.3)
                        await asyncio.to_thread(
                            registry.set_registered_model_alias, name, "live", version
                        )
                        deadline = time.monotonic() + 60
                        while (await asyncio.to_thread(served, process))[name] != version:
                            assert time.monotonic() < deadline, f"version {version} not served"
                            await asyncio.sleep(0.1)
                        moved.append(version)
                finally:
                    done.set()

            await asyncio.gather(mover(), *(user() for _ in range(CLIENTS)))

    asyncio.run(traffic_and_moves())
    assert moved == MOVES
    assert len(statuses) >= CLIENTS and set(statuses) == {200}, set(statuses)
    final = [f"{prefix}{MOVES[-1]}"]
    held = _wait_for_workers(client, prefix, final, timeout_s=15)
    # The landed code: ['models:/x/2', 'models:/x/2', 'models:/x/3', 'models:/x/3', ...].
    for address, versions in held.items():
        assert versions == {"actors": final, "alive": final}, (address, versions)
    # Stopping the gateway releases the served version too.
    process.stop()
    held = _wait_for_workers(client, prefix, [], timeout_s=15)
    assert all(h == {"actors": [], "alive": []} for h in held.values()), held
