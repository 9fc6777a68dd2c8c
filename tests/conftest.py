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


@pytest.fixture(scope="module", autouse=True)
def _restore_mlflow_uris() -> Iterator[None]:
    """Code under test (in-process coordinators, ``scaleml.tracking.configure``) points
    MLflow's process-wide tracking and registry URIs, and their environment variables, at a
    test store; put them back after each module."""
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    yield
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


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes, one thread each, as on a 2-core laptop."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="2GiB",
        dashboard_address=":0",
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
