"""Shared fixtures: a real LocalCluster of worker processes, small Parquet data, MLflow stores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from distributed import Client, LocalCluster

from scaleml.config import Settings
from scaleml.data import Dataset, write_synthetic
from tests.browser import Browser, headless_chromium


@pytest.fixture(scope="module", autouse=True)
def _restore_mlflow_uris() -> Iterator[None]:
    """Code under test (in-process coordinators, ``scaleml.tracking.configure``) points
    MLflow's process-wide tracking and registry URIs, and their environment variables, at a
    test store, and tests acting as a notebook choose an experiment with
    ``mlflow.set_experiment``; put all of it back after each module."""
    from mlflow.tracking import fluent

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")
    saved = {name: os.environ.get(name) for name in names}
    saved_experiment = fluent._active_experiment_id
    yield
    fluent._active_experiment_id = saved_experiment
    mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def _artifacts_in_a_temporary_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Experiments the tests create keep their artifacts in a temporary directory, not in
    ``./mlruns`` of the checkout (the environment variable reaches ``Settings()`` anywhere,
    and the CLI and coordinator subprocesses)."""
    name = "SCALEML_MLFLOW_ARTIFACT_LOCATION"
    saved = os.environ.get(name)
    os.environ[name] = str(tmp_path_factory.mktemp("mlartifacts"))
    yield
    if saved is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = saved


@pytest.fixture(scope="session", autouse=True)
def _no_automatic_evaluation_or_explanation() -> Iterator[None]:
    """Trainings, searches and boostings started by the tests neither evaluate nor explain
    their final model (one more pass over the data each, and shap's import; CI time); the
    tests of those features turn them on where they test them."""
    names = {"SCALEML_AUTO_EVALUATE": "false", "SCALEML_EXPLAIN_SAMPLE": "0"}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes, one thread each, as on a 2-core laptop."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="2GiB",
        dashboard_address="127.0.0.1:0",
    ) as local_cluster:
        yield local_cluster


@pytest.fixture(scope="session")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="session")
def classification_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60,000 rows x 8 features in 10 Parquet blocks, binary target."""
    path = tmp_path_factory.mktemp("data") / "clf"
    return write_synthetic(path, rows=60_000, features=8, block_rows=6_000, random_state=7)


@pytest.fixture(scope="session")
def regression_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reg"
    return write_synthetic(
        path, rows=40_000, features=6, block_rows=5_000, task="regression", noise=0.5
    )


@pytest.fixture
def classification(classification_path: Path) -> Dataset:
    return Dataset(str(classification_path), target="target")


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite MLflow store for the session (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def settings(mlflow_uri: str, tmp_path: Path) -> Settings:
    """Settings with the session's MLflow store and an experiment of this test's own."""
    return Settings(
        mlflow_tracking_uri=mlflow_uri,
        experiment=f"test-{uuid.uuid4().hex[:10]}",
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        dashboard_address=":0",
    )


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` for the session, on a free loopback port, with a PostgreSQL
    backend store of its own (created here, dropped after) and artifacts served by the server
    from a temporary directory; yields its URL."""
    import socket
    import subprocess
    import sys
    import time

    import httpx
    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    database = f"scaleml_test_mlflow_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home = tmp_path_factory.mktemp("mlflow-server")
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--serve-artifacts"]
    command += ["--backend-store-uri", f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"]
    command += ["--artifacts-destination", str(home / "artifacts")]
    url = f"http://127.0.0.1:{port}"
    with open(home / "server.log", "wb") as log:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runners
        server = subprocess.Popen(command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600  # a loaded CI machine: minutes
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {home / 'server.log'}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "http"])
def any_store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """``settings`` on the session's SQLite store, then on the session's ``mlflow server``
    (artifacts served by the server): tracking tests that take it run against both."""
    if request.param == "sqlite":
        return settings
    url = request.getfixturevalue("mlflow_server")
    update = {"mlflow_tracking_uri": url, "mlflow_artifact_location": None}
    return settings.model_copy(update=update)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's ``chromium`` through Playwright) for the page tests; a test
    asserts ``browser.errors`` is empty after loading its page. One per module: Playwright's
    synchronous API keeps an event loop running in the main thread while it is open, where
    other tests call ``asyncio.run``."""
    with headless_chromium() as chromium:
        yield chromium
