"""`scaleml cluster up | status | down` end to end: scheduler, 2 workers, MLflow server,
coordinator and gateway as supervised processes; MLflow's store in PostgreSQL; a search job,
its runs, its model served."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import psutil
import pytest
from sklearn.linear_model import SGDClassifier

from scaleml.client import Client
from scaleml.data import write_synthetic
from tests.deploy.conftest import free_ports, listening, scaleml, stack_processes

pytestmark = pytest.mark.slow

MODEL = "stack-e2e"


@dataclass
class Stack:
    state_dir: Path
    env: dict[str, str]
    ports: dict[str, int]
    pids: set[int]


def _exports(stdout: str) -> dict[str, str]:
    env = {}
    for line in stdout.splitlines():
        assert line.startswith("export "), line
        name, value = line.removeprefix("export ").split("=", 1)
        env[name] = value.strip("'")
    return env


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, pg_database: Callable[[str], str]
) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("stack")
    # MLflow's store in PostgreSQL, named as users do (psycopg 3 is chosen for MLflow);
    # the coordinator's job store in the state directory (SQLite, the default)
    mlflow_store = pg_database("mlflow").replace("postgresql+psycopg://", "postgresql://")
    names = ["scheduler", "dashboard", "mlflow", "coordinator", "gateway"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    port_options = [arg for n in names for arg in (f"--{n}-port", str(ports[n]))]
    up = scaleml(
        "cluster", "up", "--state-dir", str(state_dir), "--workers", "2",
        "--memory-limit", "1GiB", "--mlflow-backend-store", mlflow_store, *port_options,
        "--timeout", "600",
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        yield Stack(state_dir, _exports(up.stdout), ports, set())
    finally:
        scaleml("cluster", "down", "--state-dir", str(state_dir))


def test_up_starts_every_part_on_loopback_and_prints_the_settings(stack: Stack) -> None:
    env = stack.env
    assert env["SCALEML_SCHEDULER"] == f"tcp://127.0.0.1:{stack.ports['scheduler']}"
    assert env["SCALEML_MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{stack.ports['mlflow']}"
    assert env["SCALEML_COORDINATOR_URL"] == f"http://127.0.0.1:{stack.ports['coordinator']}"
    status = scaleml("cluster", "status", "--state-dir", str(stack.state_dir))
    assert status.returncode == 0, status.stdout
    for part in ("scheduler", "worker-1", "worker-2", "mlflow", "coordinator"):
        assert any(line.split()[:2] == [part, "RUNNING"] for line in status.stdout.splitlines())
    addresses = listening(stack_processes(stack.state_dir))
    ports = {port for _, port in addresses}
    assert {stack.ports[n] for n in ("scheduler", "dashboard", "mlflow", "coordinator")} <= ports
    # workers, nannies, their dashboards, MLflow's server: nothing listens beyond loopback
    assert {ip for ip, _ in addresses} == {"127.0.0.1"}, addresses
    assert len(addresses) >= 4 + 2 * 3


def test_search_job_runs_are_in_mlflow_and_the_model_is_served(stack: Stack) -> None:
    data = write_synthetic(
        Path(stack.env["SCALEML_DATA_DIR"]) / "clf", rows=2_000, features=4, block_rows=250
    )
    with Client(stack.env["SCALEML_COORDINATOR_URL"]) as client:
        job = client.search(
            SGDClassifier(tol=None, random_state=0),
            {"alpha": {"distribution": "loguniform", "low": 1e-5, "high": 1e-1}},
            str(data),
            target="target",
            method="random",
            n_iter=2,
            random_state=0,
            experiment="stack-e2e",
            register_as=MODEL,
        )
        info = job.wait(timeout=300, progress=False)
        assert info.state == "SUCCEEDED", info.error
        result = job.result()

    uri = stack.env["SCALEML_MLFLOW_TRACKING_URI"]
    tracking = mlflow.MlflowClient(uri, registry_uri=uri)  # not a registry another test chose
    experiment = tracking.get_experiment_by_name("stack-e2e")
    runs = tracking.search_runs([experiment.experiment_id])
    parent = [r for r in runs if r.info.run_id == result.run_id]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.run_id]
    assert parent and parent[0].info.status == "FINISHED"
    assert len(children) == 2
    assert tracking.get_model_version_by_alias(MODEL, "champion").run_id == result.run_id

    # the gateway joins the running stack; the other parts are left as they are
    before = {p.name: p.pid for p in _parts(stack)}
    up = scaleml(
        "cluster", "up", "--state-dir", str(stack.state_dir), "--model", MODEL, "--timeout", "600"
    )
    assert up.returncode == 0, up.stderr
    after = {p.name: p.pid for p in _parts(stack)}
    assert {n: after[n] for n in before} == before and "gateway" in after
    gateway = f"http://127.0.0.1:{stack.ports['gateway']}"
    _wait(lambda: httpx.get(f"{gateway}/v2/health/ready").status_code == 200, 120)
    frame = pd.read_parquet(data).drop(columns=["target"]).head(7)
    answer = httpx.post(
        f"{gateway}/invocations", json={"dataframe_split": frame.to_dict(orient="split")}
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 7
    assert set(answer.json()["predictions"]) <= {0, 1}


def test_status_reports_a_killed_part_and_up_starts_it_again(stack: Stack) -> None:
    coordinator = next(p for p in _parts(stack) if p.name == "coordinator")
    os.kill(coordinator.pid, signal.SIGKILL)
    _wait(lambda: not psutil.pid_exists(coordinator.pid) or _zombie(coordinator.pid), 30)
    status = scaleml("cluster", "status", "--state-dir", str(stack.state_dir))
    assert status.returncode == 1
    line = next(line for line in status.stdout.splitlines() if line.startswith("coordinator"))
    assert "RUNNING" not in line and "failing" in line and "SIGKILL" in line, line
    others = [line.split() for line in status.stdout.splitlines()[1:]]
    assert all(f[1:2] == ["RUNNING"] and "ok" in f for f in others if f[0] != "coordinator")
    up = scaleml("cluster", "up", "--state-dir", str(stack.state_dir), "--timeout", "600")
    assert up.returncode == 0, up.stderr
    status = scaleml("cluster", "status", "--state-dir", str(stack.state_dir))
    assert status.returncode == 0, status.stdout


def test_down_leaves_no_process_and_no_listening_port(stack: Stack) -> None:
    processes = stack_processes(stack.state_dir)
    assert len(processes) >= 6
    down = scaleml("cluster", "down", "--state-dir", str(stack.state_dir))
    assert down.returncode == 0, down.stderr
    alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    held = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
    assert not held & set(stack.ports.values())
    status = scaleml("cluster", "status", "--state-dir", str(stack.state_dir))
    assert status.returncode == 1 and "RUNNING" not in status.stdout


@dataclass
class _Part:
    name: str
    pid: int


def _parts(stack: Stack) -> list[_Part]:
    status = scaleml("cluster", "status", "--state-dir", str(stack.state_dir))
    parts = []
    for line in status.stdout.splitlines()[1:]:
        fields = line.split()
        if fields[1] == "RUNNING":
            parts.append(_Part(fields[0], int(fields[2])))
    return parts


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait(check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not true within {timeout_s} s")
