"""End to end with real processes: ``dask scheduler`` + 2 ``dask worker``s, ``mlflow server`` on
PostgreSQL, and ``scaleml coordinator`` (uvicorn) with its job store in PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest
from distributed import Client as DaskClient
from sklearn.linear_model import SGDClassifier

from scaleml.client import Client
from scaleml.coordinator import RESTARTED
from scaleml.coordinator.service import STOPPED
from tests.coordinator.conftest import TOKEN, free_port, train_spec, wait_for

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


class Stack:
    """The processes of a deployment, each in its own process group, all killed at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.processes: list[subprocess.Popen[bytes]] = []
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.url = ""

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Any:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            cwd=self.tmp,
        )
        log.close()
        self.processes.append(process)
        return process

    def start_coordinator(self) -> None:
        self.coordinator = self.start(
            "coordinator", [str(BIN / "scaleml"), "coordinator"], self.env
        )
        with httpx.Client(base_url=self.url, timeout=5) as http:
            wait_for(lambda: _ok(http, "/health"), 120, 0.5, "the coordinator to be ready")

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def close(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.kill(process)


def _ok(http: httpx.Client, path: str) -> bool:
    try:
        return http.get(path).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_database: Any) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    running = Stack(tmp)
    try:
        scheduler = f"tcp://127.0.0.1:{free_port()}"
        port = scheduler.rsplit(":", 1)[1]
        running.start(
            "scheduler",
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", port,
             "--no-dashboard"],
        )  # fmt: skip
        for i in range(2):
            running.start(
                f"worker-{i}",
                [str(BIN / "dask"), "worker", scheduler, "--host", "127.0.0.1",
                 "--nthreads", "1", "--memory-limit", "1GiB", "--no-dashboard",
                 "--name", f"worker-{i}", "--local-directory", str(tmp / f"worker-{i}")],
            )  # fmt: skip
        mlflow_url = f"http://127.0.0.1:{free_port()}"
        running.start(
            "mlflow",
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1",
             "--port", mlflow_url.rsplit(":", 1)[1], "--workers", "1",
             "--backend-store-uri", pg_database("mlflow"),
             "--artifacts-destination", str(tmp / "artifacts")],
        )  # fmt: skip
        running.url = f"http://127.0.0.1:{free_port()}"
        running.env = {
            "SCALEML_SCHEDULER": scheduler,
            "SCALEML_MLFLOW_TRACKING_URI": mlflow_url,
            "SCALEML_EXPERIMENT": "end-to-end",
            "SCALEML_COORDINATOR_DB": pg_database("e2e_jobs").replace("+psycopg", ""),
            "SCALEML_COORDINATOR_PORT": running.url.rsplit(":", 1)[1],
            "SCALEML_COORDINATOR_TOKEN": TOKEN,
            "SCALEML_COORDINATOR_HEARTBEAT_S": "0.5",
            "SCALEML_COORDINATOR_MAX_RUNNING_JOBS": "1",
            "SCALEML_CACHE_DIR": str(tmp / "cache"),
        }
        with DaskClient(scheduler, timeout="60s") as dask:
            dask.wait_for_workers(2, timeout=120)
        with httpx.Client(base_url=mlflow_url, timeout=5) as http:
            wait_for(lambda: _ok(http, "/health"), 180, 0.5, "the MLflow server to be ready")
        running.start_coordinator()
        running.mlflow_url = mlflow_url  # type: ignore[attr-defined]
        running.scheduler = scheduler  # type: ignore[attr-defined]
        yield running
    finally:
        running.close()


def test_search_job_outlives_its_client_and_registers_a_loadable_model(
    stack: Stack, jobs_data: Path
) -> None:
    client = Client(stack.url, token=TOKEN)
    job = client.search(
        SGDClassifier(tol=None, random_state=0),
        {"alpha": {"distribution": "loguniform", "low": 1e-5, "high": 1e-1}, "penalty": ["l2"]},
        str(jobs_data),
        target="target",
        method="hyperband",
        max_iter=3,
        random_state=0,
        register_as="e2e-search",
    )
    job_id = job.id
    client.close()  # the laptop closes its lid

    again = Client(stack.url, token=TOKEN)
    info = again.job(job_id).wait(timeout=240, progress=False)
    assert info.state == "SUCCEEDED", info.error
    result = again.job(job_id).result()
    assert result.registered_version == "1"
    assert 0.5 < result.best_score <= 1.0 and set(result.best_params) == {"alpha", "penalty"}
    assert info.mlflow_run_id == result.run_id
    again.close()

    mlflow.set_tracking_uri(stack.mlflow_url)
    mlflow.set_registry_uri(stack.mlflow_url)  # other tests may have pointed it elsewhere
    model = mlflow.pyfunc.load_model("models:/e2e-search@champion")
    frame = pd.read_parquet(jobs_data).drop(columns=["target"]).head(5)
    assert len(model.predict(frame)) == 5
    run = mlflow.MlflowClient(stack.mlflow_url).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["scaleml.job_id"] == job_id


def test_sigkill_fails_the_running_job_and_the_restarted_coordinator_runs_the_queue(
    stack: Stack, jobs_data: Path
) -> None:
    client = Client(stack.url, token=TOKEN, retries=2, backoff=0.2)
    before = {info.id for info in client.jobs(limit=500)}
    running = client.submit(train_spec(jobs_data, epochs=100_000))
    queued = client.submit(train_spec(jobs_data, epochs=2))
    wait_for(lambda: (running.status().progress or 0) > 0, 120, what="the long job to run")
    assert queued.status().state == "QUEUED"

    assert stack.coordinator is not None
    stack.kill(stack.coordinator)  # SIGKILL: no chance to clean up
    stack.start_coordinator()

    fresh = Client(stack.url, token=TOKEN)
    info = fresh.job(running.id).wait(timeout=60, progress=False)
    assert info.state == "FAILED" and info.error == RESTARTED
    assert fresh.job(queued.id).wait(timeout=120, progress=False).state == "SUCCEEDED"
    after = {info.id for info in fresh.jobs(limit=500)}
    assert after == before | {running.id, queued.id}  # no job row lost
    events = [e.data.get("state") for e in fresh.job(running.id).events() if e.type == "state"]
    assert events == ["QUEUED", "RUNNING", "FAILED"]
    # Its MLflow run, left RUNNING by the dead coordinator, is ended FAILED.
    run_id = info.mlflow_run_id
    assert run_id
    tracking = mlflow.MlflowClient(stack.mlflow_url)  # type: ignore[attr-defined]
    wait_for(lambda: tracking.get_run(run_id).info.status == "FAILED", 30, what="run FAILED")

    # The dead coordinator's Dask work went with its connection.
    with DaskClient(stack.scheduler, timeout="30s") as dask:  # type: ignore[attr-defined]

        def leftovers() -> list[str]:
            keys = dask.run_on_scheduler(
                lambda dask_scheduler: list(map(str, dask_scheduler.tasks))
            )
            return [k for k in keys if k.startswith(("fit_blocks", "score_blocks", "rows-"))]

        wait_for(lambda: not leftovers(), 30, what="the killed job's tasks to go")
    fresh.close()
    client.close()


def test_sigterm_stops_the_coordinator_and_fails_its_running_job(
    stack: Stack, jobs_data: Path
) -> None:
    client = Client(stack.url, token=TOKEN)
    job = client.submit(train_spec(jobs_data, epochs=100_000))
    wait_for(lambda: (job.status().progress or 0) > 0, 120, what="the long job to run")
    assert stack.coordinator is not None
    os.killpg(stack.coordinator.pid, signal.SIGTERM)
    stack.coordinator.wait(60)  # uvicorn shuts down, then re-raises the signal (-15)

    stack.start_coordinator()
    info = Client(stack.url, token=TOKEN).job(job.id).status()
    assert info.state == "FAILED" and info.error == STOPPED
    run = mlflow.MlflowClient(stack.mlflow_url).get_run(info.mlflow_run_id)  # type: ignore[attr-defined]
    assert run.info.status == "KILLED"
    client.close()
