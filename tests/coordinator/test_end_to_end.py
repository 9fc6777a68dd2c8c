"""End to end with real processes: ``dask scheduler`` + 2 ``dask worker``s, ``mlflow server`` on
PostgreSQL, and ``scaleml coordinator`` (uvicorn) with its job store in PostgreSQL (a second
replica on the same database in the last test)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
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
from tests.coordinator.conftest import TOKEN, free_port, search_spec, train_spec, wait_for

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

    def start_coordinator(self, url: str | None = None) -> subprocess.Popen[bytes]:
        """Start a coordinator replica (the stack's own one, or another one at ``url``)."""
        port = (url or self.url).rsplit(":", 1)[1]
        process = self.start(
            f"coordinator-{port}",
            [str(BIN / "scaleml"), "coordinator"],
            {**self.env, "SCALEML_COORDINATOR_PORT": port},
        )
        if url is None:
            self.coordinator = process
        with httpx.Client(base_url=url or self.url, timeout=5) as http:
            wait_for(lambda: _ok(http, "/health"), 120, 0.5, "the coordinator to be ready")
        return process

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
            "SCALEML_COORDINATOR_MAX_RUNNING_JOBS": "2",
            "SCALEML_CACHE_DIR": str(tmp / "cache"),
            "SCALEML_COORDINATOR_DATA_ROOTS": str(tmp.parent),
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


def test_sigkill_retries_the_running_search_and_the_restarted_coordinator_runs_the_queue(
    stack: Stack, jobs_data: Path
) -> None:
    client = Client(stack.url, token=TOKEN, retries=2, backoff=0.2)
    before = {info.id for info in client.jobs(limit=500)}
    search = client.submit(search_spec(jobs_data, max_iter=9, register_as="e2e-retried"))
    once = client.submit(train_spec(jobs_data, epochs=100_000, max_attempts=1))
    queued = client.submit(train_spec(jobs_data, epochs=2))
    tracking = mlflow.MlflowClient(stack.mlflow_url)  # type: ignore[attr-defined]
    wait_for(lambda: _trial_scored(tracking, search), 180, what="a trial run's scores logged")
    wait_for(lambda: (once.status().progress or 0) > 0, 120, what="the long job to run")
    assert search.status().state == "RUNNING" and queued.status().state == "QUEUED"
    first_run = search.status().mlflow_run_id

    assert stack.coordinator is not None
    stack.kill(stack.coordinator)  # SIGKILL: no chance to clean up
    stack.start_coordinator()

    fresh = Client(stack.url, token=TOKEN)
    # max_attempts=1: FAILED as before retries existed.
    info = fresh.job(once.id).wait(timeout=60, progress=False)
    assert info.state == "FAILED" and info.error == RESTARTED
    assert (info.attempt, info.max_attempts) == (1, 1)
    events = [e.data.get("state") for e in fresh.job(once.id).events() if e.type == "state"]
    assert events == ["QUEUED", "RUNNING", "FAILED"]
    # Its MLflow run, left RUNNING by the dead coordinator, is ended FAILED.
    run_id = info.mlflow_run_id
    assert run_id
    wait_for(lambda: tracking.get_run(run_id).info.status == "FAILED", 30, what="run FAILED")

    # The search (max_attempts 2 by default) succeeds on its second attempt.
    info = fresh.job(search.id).wait(timeout=300, progress=False)
    assert info.state == "SUCCEEDED", info.error
    assert (info.attempt, info.max_attempts) == (2, 2) and info.error is None
    assert fresh.job(search.id).result().registered_version == "1"
    events = list(fresh.job(search.id).events())
    assert [(e.type, e.data.get("state"), e.data.get("attempt")) for e in events
            if e.type != "progress"] == [
        ("state", "QUEUED", None), ("state", "RUNNING", 1), ("retrying", None, 1),
        ("state", "QUEUED", 2), ("state", "RUNNING", 2), ("state", "SUCCEEDED", None),
    ]  # fmt: skip
    done = subprocess.run(
        [str(BIN / "scaleml"), "jobs", "show", search.id],
        env={**os.environ, "SCALEML_COORDINATOR_URL": stack.url,
             "SCALEML_COORDINATOR_TOKEN": TOKEN},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    shown = json.loads(done.stdout)
    assert (shown["attempt"], shown["max_attempts"]) == (2, 2)

    # Each attempt has its own parent run, tagged; the first one and every nested run it left
    # RUNNING are ended FAILED (all of them carry the job id).
    runs = _runs_of_job(tracking, info.raw["mlflow_experiment_id"], search.id)
    parents = {
        r.data.tags["scaleml.attempt"]: r for r in runs if "mlflow.parentRunId" not in r.data.tags
    }
    assert parents["1"].info.run_id == first_run and parents["1"].info.status == "FAILED"
    assert parents["2"].info.run_id == info.mlflow_run_id
    assert parents["2"].info.status == "FINISHED" and len(parents) == 2
    nested = tracking.search_runs(
        [parents["1"].info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{first_run}'",
        max_results=1000,
    )
    statuses = Counter(r.info.status for r in nested)
    assert statuses["FAILED"] >= 1 and set(statuses) <= {"FAILED", "FINISHED"}, statuses
    assert {(r.data.tags.get("scaleml.job_id"), r.data.tags.get("scaleml.attempt"))
            for r in nested} == {(search.id, "1")}  # fmt: skip
    mlflow.set_tracking_uri(stack.mlflow_url)  # type: ignore[attr-defined]
    mlflow.set_registry_uri(stack.mlflow_url)  # type: ignore[attr-defined]
    model = mlflow.pyfunc.load_model("models:/e2e-retried@champion")
    frame = pd.read_parquet(jobs_data).drop(columns=["target"]).head(5)
    assert len(model.predict(frame)) == 5

    assert fresh.job(queued.id).wait(timeout=120, progress=False).state == "SUCCEEDED"
    after = {info.id for info in fresh.jobs(limit=500)}
    assert after == before | {search.id, once.id, queued.id}  # no job row lost

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


def test_two_replicas_the_survivor_finishes_a_killed_replicas_search_exactly_once(
    stack: Stack, jobs_data: Path
) -> None:
    other_url = f"http://127.0.0.1:{free_port()}"
    replicas = {stack.url: stack.coordinator, other_url: stack.start_coordinator(other_url)}
    client = Client(stack.url, token=TOKEN, retries=2, backoff=0.2)
    job = client.submit(search_spec(jobs_data, max_iter=9, register_as="e2e-replicas"))
    tracking = mlflow.MlflowClient(stack.mlflow_url)  # type: ignore[attr-defined]
    wait_for(lambda: _trial_scored(tracking, job), 180, what="a trial run's scores logged")
    first = job.status()
    assert first.state == "RUNNING"
    dead_url = next(u for u, p in replicas.items() if p and f":{p.pid}:" in str(first.raw["owner"]))
    (live_url,) = set(replicas) - {dead_url}
    stack.kill(replicas[dead_url])  # the replica running the search
    client.close()

    survivor = Client(live_url, token=TOKEN)
    info = survivor.job(job.id).wait(timeout=300, progress=False)
    assert info.state == "SUCCEEDED", info.error
    assert info.attempt == 2 and f":{replicas[live_url].pid}:" in info.raw["owner"]

    # The store: attempt 1 by the dead replica, then the retry, then attempt 2 by the survivor;
    # only the holder can report, so no event of attempt 1 follows the hand-over.
    events = list(survivor.job(job.id).events())
    running = [e for e in events if e.data.get("state") == "RUNNING"]
    assert [(e.data["attempt"], e.data["owner"]) for e in running] == [
        (1, first.raw["owner"]), (2, info.raw["owner"])
    ]  # fmt: skip
    (retry,) = [e for e in events if e.type == "retrying"]
    assert running[0].id < retry.id < running[1].id
    assert [e.data["state"] for e in events if e.type == "state"].count("SUCCEEDED") == 1

    # MLflow: one parent run per attempt; nothing attempt 1 logged is later than the start of
    # attempt 2 (they never ran at the same time); one model version registered.
    runs = _runs_of_job(tracking, info.raw["mlflow_experiment_id"], job.id)
    by_attempt: dict[str, list[Any]] = {"1": [], "2": []}
    for run in runs:
        by_attempt[run.data.tags["scaleml.attempt"]].append(run)
    second = tracking.get_run(info.mlflow_run_id)
    assert second.data.tags["scaleml.attempt"] == "2" and second.info.status == "FINISHED"
    assert [r.info.status for r in by_attempt["2"]].count("RUNNING") == 0
    assert all(r.info.status != "RUNNING" for r in by_attempt["1"])
    assert all(r.info.start_time < second.info.start_time for r in by_attempt["1"])
    logged = [
        m.timestamp
        for run in by_attempt["1"]
        for key in run.data.metrics
        for m in tracking.get_metric_history(run.info.run_id, key)
    ]
    assert logged and max(logged) <= second.info.start_time
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.info.status for r in parents) == ["FAILED", "FINISHED"]
    versions = tracking.search_model_versions("name = 'e2e-replicas'")
    assert [v.run_id for v in versions] == [info.mlflow_run_id]
    survivor.close()


def _trial_scored(tracking: mlflow.MlflowClient, job: Any) -> bool:
    """Whether a nested trial run of the job's current attempt has metrics in MLflow."""
    run_id = job.status().mlflow_run_id
    if run_id is None:
        return False
    experiment_id = tracking.get_run(run_id).info.experiment_id
    trials = tracking.search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'"
    )
    return any(run.data.metrics for run in trials)


def _runs_of_job(tracking: mlflow.MlflowClient, experiment_id: str, job_id: str) -> list[Any]:
    """Every MLflow run tagged with the job's id (parents and nested trial runs)."""
    return tracking.search_runs(
        [experiment_id], filter_string=f"tags.`scaleml.job_id` = '{job_id}'", max_results=1000
    )
