"""Coordinator fixtures: PostgreSQL databases of their own, tiny data, servers on loopback."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from distributed import LocalCluster

from scaleml.config import Settings
from scaleml.data import write_synthetic

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = "test-token-123"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[Callable[[str], str]]:
    """A factory of fresh PostgreSQL databases (``scaleml_test_<prefix>_<uuid>``), each
    dropped at the end of the session; returns the database's SQLAlchemy URL."""
    created: list[str] = []

    def create(prefix: str = "jobs") -> str:
        name = f"scaleml_test_{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    yield create
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def jobs_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 rows x 4 features in 8 Parquet blocks, binary target: jobs take seconds."""
    path = tmp_path_factory.mktemp("jobs-data") / "clf"
    return write_synthetic(path, rows=2_000, features=4, block_rows=250, random_state=3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadServer:
    """A real uvicorn server on a loopback port, in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def coordinator_settings(
    cluster: LocalCluster, mlflow_uri: str, db_url: str, tmp: Path, **overrides: Any
) -> Settings:
    """Settings of a coordinator on the session's cluster and MLflow store."""
    values: dict[str, Any] = {
        "scheduler": cluster.scheduler_address,
        "mlflow_tracking_uri": mlflow_uri,
        "experiment": f"jobs-{uuid.uuid4().hex[:8]}",
        "coordinator_db": db_url,
        "coordinator_heartbeat_s": 0.5,
        "coordinator_max_running_jobs": 1,
        "coordinator_token": TOKEN,
        "data_dir": tmp / "data",
        "cache_dir": tmp / "cache",
        "coordinator_data_roots": [str(tmp.parent)],  # pytest's base: every test's data
    }
    values.update(overrides)
    return Settings(**values)


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str | Callable[[], str] = "",
) -> Any:
    """Poll ``condition`` until it returns a truthy value; fail the test after ``timeout``
    (``what``, text or a function giving it at that moment, says what was awaited)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout} s waiting for {said or condition}")
        time.sleep(interval)


def train_spec(data: Path, epochs: int = 1, **extra: Any) -> dict[str, Any]:
    """A train job spec over the tiny data."""
    return {
        "kind": "train",
        "estimator": {"estimator": "SGDClassifier", "params": {"tol": None, "random_state": 0}},
        "dataset": {"path": str(data), "target": "target", "validation_fraction": 0.25},
        "epochs": epochs,
        **extra,
    }


def search_spec(data: Path, **extra: Any) -> dict[str, Any]:
    """A small hyperband search job spec over the tiny data."""
    return {
        "kind": "search",
        "estimator": {"estimator": "SGDClassifier", "params": {"tol": None, "random_state": 0}},
        "dataset": {"path": str(data), "target": "target", "validation_fraction": 0.25},
        "method": "hyperband",
        "space": {
            "alpha": {"distribution": "loguniform", "low": 1e-5, "high": 1e-1},
            "penalty": ["l2", "l1"],
        },
        "max_iter": 3,
        "random_state": 0,
        **extra,
    }


def http(url: str, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30)
