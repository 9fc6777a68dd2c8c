"""The Python client and the ``scaleml jobs`` CLI against a real coordinator (uvicorn on a
loopback port, SQLite job store, the session's LocalCluster and MLflow store)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import LocalCluster
from sklearn.cluster import KMeans
from sklearn.linear_model import SGDClassifier

import scaleml
from scaleml.cli import main
from scaleml.client import (
    AuthenticationError,
    Client,
    CoordinatorUnavailable,
    JobCancelledError,
    JobFailed,
    JobNotFound,
    JobStateError,
    SpecError,
)
from scaleml.config import Settings
from scaleml.coordinator import create_app
from scaleml.data import Dataset, write_synthetic
from scaleml.errors import EstimatorSpecError
from tests.coordinator.conftest import TOKEN, ThreadServer, coordinator_settings, train_spec


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("client-data") / "clf"
    return write_synthetic(path, rows=2_000, features=4, block_rows=250, random_state=5)


@pytest.fixture(scope="module")
def server(
    cluster: LocalCluster, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("client-coordinator")
    settings = coordinator_settings(cluster, mlflow_uri, f"sqlite:///{tmp / 'jobs.db'}", tmp)
    with ThreadServer(create_app(settings)) as running:
        yield running


@pytest.fixture
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.url, token=TOKEN) as connected:
        yield connected


def test_scaleml_client_is_the_client() -> None:
    assert scaleml.Client is Client


def test_train_builder_wait_result_and_events(
    client: Client, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = client.train(SGDClassifier(tol=None, random_state=0), str(data), target="target",
                       epochs=3, scoring="accuracy")  # fmt: skip
    spec = job.status().raw["spec"]
    assert spec["estimator"]["estimator"] == "sklearn.linear_model.SGDClassifier"
    assert spec["estimator"]["params"]["tol"] is None
    assert spec["dataset"]["target"] == "target" and spec["epochs"] == 3

    info = job.wait(timeout=120, poll_s=0.2)
    assert info.state == "SUCCEEDED" and info.done
    assert "100" in capsys.readouterr().err  # the progress bar reached 100 %
    result = job.result()
    assert result.run_id == info.mlflow_run_id and result.model_uri == info.model_uri
    assert 0.5 < result.best_score <= 1.0
    assert result.best_params["tol"] is None

    events = list(job.events())
    states = [e.data["state"] for e in events if e.type == "state"]
    assert states == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert any(e.type == "progress" for e in events)
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert list(job.events(after=events[-2].id)) == events[-1:]


def test_dataset_objects_and_search_builder(client: Client, data: Path) -> None:
    dataset = Dataset(str(data), target="target", validation_fraction=0.25)
    job = client.search(
        SGDClassifier(tol=None),
        {"alpha": [1e-4, 1e-3]},
        dataset,
        method="random",
        n_iter=2,
        options={"cv": 2},
    )
    spec = job.status().raw["spec"]
    assert spec["kind"] == "search" and spec["method"] == "random" and spec["n_iter"] == 2
    assert spec["dataset"]["features"] == dataset.features
    assert spec["dataset"]["validation_fraction"] == 0.25
    assert job.cancel().state in ("CANCELLED", "RUNNING")
    with pytest.raises(JobCancelledError, match="was cancelled"):
        job.result(timeout=60)


def test_http_errors_become_typed_exceptions_with_the_server_message(
    client: Client, server: ThreadServer, data: Path
) -> None:
    with pytest.raises(SpecError, match=r"epochs: Input should be greater than or equal to 1"):
        client.train(SGDClassifier(), str(data), target="target", epochs=0)
    with pytest.raises(SpecError, match=r"max_attempts: Input should be greater than or equal"):
        client.train(SGDClassifier(), str(data), target="target", max_attempts=0)
    spec = train_spec(data)
    spec["estimator"] = {"estimator": "os.system"}
    with pytest.raises(SpecError, match=r"estimator: .*'os.system' is not on the allow-list"):
        client.submit(spec)
    with pytest.raises(EstimatorSpecError, match="not on the allow-list"):
        client.train(KMeans(), str(data))  # refused before any request
    with pytest.raises(JobNotFound, match="no job with id 'missing'") as not_found:
        client.job("missing")
    assert not_found.value.status == 404
    with Client(server.url, token="wrong") as wrong, pytest.raises(AuthenticationError):
        wrong.jobs()
    assert Client(server.url, token="wrong").health()["status"] == "ok"


def test_failed_and_finished_jobs(client: Client, data: Path, tmp_path: Path) -> None:
    job = client.train(SGDClassifier(), str(tmp_path / "absent"), target="target", max_attempts=3)
    with pytest.raises(JobFailed, match=r"DatasetError: .*absent"):
        job.result(timeout=60)
    info = job.status()  # its own error: not retried
    assert (info.state, info.attempt, info.max_attempts) == ("FAILED", 1, 3)
    assert "retrying" not in {event.type for event in job.events()}
    with pytest.raises(JobStateError, match="already ended FAILED"):
        job.cancel()
    assert job.id in {info.id for info in client.jobs(state="FAILED")}


def test_running_job_is_cancelled(client: Client, data: Path) -> None:
    job = client.submit(train_spec(data, epochs=100_000))
    deadline = time.monotonic() + 60
    while (job.status().progress or 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.status().state == "RUNNING"
    assert job.cancel().raw["cancel_requested"] is True
    assert job.wait(timeout=30, progress=False).state == "CANCELLED"
    with pytest.raises(TimeoutError):
        client.submit(train_spec(data, epochs=100_000)).wait(timeout=0.5, progress=False)
    for info in client.jobs(state=["QUEUED", "RUNNING"]):
        client.job(info.id).cancel()


def test_network_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    settings = Settings(
        coordinator_db=f"sqlite:///{tmp_path / 'jobs.db'}",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        cache_dir=tmp_path / "cache",
    )
    late = ThreadServer(create_app(settings, run_jobs=False))
    started = time.monotonic()
    with pytest.raises(CoordinatorUnavailable, match="cannot reach the coordinator"):
        Client(late.url, retries=2, backoff=0.05).jobs()
    assert time.monotonic() - started < 5

    opener = threading.Timer(1.0, late.__enter__)
    opener.start()
    try:
        with Client(late.url, retries=8, backoff=0.2) as patient:
            assert patient.jobs() == []  # retried until the coordinator came up
    finally:
        opener.join()
        late.__exit__()


def test_cli_submit_list_show_wait_cancel(
    server: ThreadServer,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SCALEML_COORDINATOR_URL", server.url)
    monkeypatch.setenv("SCALEML_COORDINATOR_TOKEN", TOKEN)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(train_spec(data, epochs=2)))

    assert main(["jobs", "submit", str(spec_file), "--wait"]) == 0
    out = capsys.readouterr().out.splitlines()
    job_id = out[0]
    assert out[1] == f"{job_id} SUCCEEDED" and out[2].startswith("run_id: ")

    assert main(["jobs", "list", "--state", "SUCCEEDED"]) == 0
    assert job_id in capsys.readouterr().out
    assert main(["jobs", "show", job_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "SUCCEEDED" and (shown["attempt"], shown["max_attempts"]) == (1, 2)
    assert main(["jobs", "wait", job_id]) == 0
    capsys.readouterr()
    assert main(["jobs", "cancel", job_id]) == 2
    assert "already ended SUCCEEDED" in capsys.readouterr().err

    bad = train_spec(data, epochs=0)
    spec_file.write_text(json.dumps(bad))
    assert main(["jobs", "submit", str(spec_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: HTTP 422: epochs:") and err.count("\n") == 1

    failing = train_spec(data)
    failing["dataset"]["path"] = str(tmp_path / "absent")
    spec_file.write_text(json.dumps(failing))
    assert main(["jobs", "submit", str(spec_file), "--wait"]) == 1
    assert "DatasetError" in capsys.readouterr().err

    assert main(["jobs", "show", "nope"]) == 2
    assert "no job with id 'nope'" in capsys.readouterr().err
    spec_file.write_text("{not json")
    assert main(["jobs", "submit", str(spec_file)]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_cli_reports_an_unreachable_coordinator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.coordinator.conftest import free_port

    monkeypatch.setenv("SCALEML_COORDINATOR_URL", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    assert main(["jobs", "list"]) == 2
    assert "cannot reach the coordinator" in capsys.readouterr().err
    assert time.monotonic() - started < 60
