"""The coordinator's trust boundary outside the request path: what a running job's error may
say about a file, which data roots apply when none are configured, when the coordinator
refuses to start (exposed without a token, a database it cannot reach), and that a database
password never appears in what it prints."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster

from scaleml.cli import main
from scaleml.config import Settings
from scaleml.coordinator import JobStore, create_app, parse_spec
from scaleml.coordinator._access import SpecRefused, check_binding, check_spec
from scaleml.data import Dataset
from scaleml.errors import ConfigError, DatasetError
from tests.coordinator.conftest import ThreadServer, coordinator_settings, http, wait_for

_SECRET = "root:x:0:0:root:/root:/bin/bash"


@pytest.fixture(scope="module")
def secret_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV under the data root whose one line (its header) looks like /etc/passwd."""
    path = tmp_path_factory.mktemp("secret") / "passwd.csv"
    path.write_text(f"{_SECRET}\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    return path


def test_a_missing_column_error_quotes_no_file_content(secret_csv: Path) -> None:
    with pytest.raises(DatasetError) as raised:
        Dataset(str(secret_csv), target="nope")
    message = str(raised.value)
    assert "'nope'" in message and "1 column(s)" in message
    assert "root:" not in message and "daemon" not in message
    with pytest.raises(DatasetError) as raised:
        Dataset(str(secret_csv), target=_SECRET, features=["uid", "shell"])
    assert "['uid', 'shell']" in str(raised.value) and "bash" not in str(raised.value)


@pytest.mark.slow
def test_a_failed_job_quotes_no_file_content(
    cluster: LocalCluster, mlflow_uri: str, secret_csv: Path, tmp_path: Path
) -> None:
    settings = coordinator_settings(
        cluster, mlflow_uri, f"sqlite:///{tmp_path / 'j.db'}", tmp_path, coordinator_heartbeat_s=5
    )
    spec = {
        "kind": "train",
        "estimator": {"estimator": "SGDClassifier"},
        "dataset": {"path": str(secret_csv), "target": "nope"},
    }
    with ThreadServer(create_app(settings)) as server, http(server.url) as api:
        job_id = api.post("/jobs", json=spec).json()["id"]

        def ended() -> dict[str, Any] | None:
            job = api.get(f"/jobs/{job_id}").json()
            return job if job["state"] in ("FAILED", "SUCCEEDED") else None

        job = wait_for(ended, 120, what="the job to fail")
        events = api.get(f"/jobs/{job_id}/events", params={"follow": "false"}).text
    assert job["state"] == "FAILED"
    assert "'nope'" in job["error"] and "1 column(s)" in job["error"]
    assert "root:" not in job["error"] and "root:" not in events


def _train(path: str) -> Any:
    return parse_spec(
        {
            "kind": "train",
            "estimator": {"estimator": "SGDClassifier"},
            "dataset": {"path": path, "target": "t"},
        }
    )


def test_unset_data_roots_mean_the_data_directory_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    check_spec(_train(str(tmp_path / "data" / "clf")), settings, None)
    check_spec(_train(f"file://{tmp_path}/data/x/*.parquet"), settings, None)
    for outside in (str(tmp_path / "other"), str(tmp_path / "data-2"), "s3://bucket/x"):
        with pytest.raises(SpecRefused, match="outside the coordinator's data roots"):
            check_spec(_train(outside), settings, None)


def test_remote_roots_are_prefixes(tmp_path: Path) -> None:
    settings = Settings(coordinator_data_roots="s3://bucket/prefix, /srv/data")
    assert settings.coordinator_data_roots == ["s3://bucket/prefix", "/srv/data"]
    for inside in ("s3://bucket/prefix/a.parquet", "s3://bucket/prefix/*/x.csv", "/srv/data/x"):
        check_spec(_train(inside), settings, None)
    for outside in (
        "s3://bucket/prefix2/a.parquet",
        "s3://bucket/prefix/../other/a.parquet",
        "gcs://bucket/prefix/a.parquet",
        "https://bucket/prefix/a.parquet",
        "/srv/data/../../etc/passwd",
    ):
        with pytest.raises(SpecRefused) as refused:
            check_spec(_train(outside), settings, None)
        assert refused.value.loc == ("dataset", "path") and refused.value.status == 422


def test_an_exposed_coordinator_without_a_token_does_not_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCALEML_COORDINATOR_TOKEN", raising=False)
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.org"):
        assert main(["coordinator", "--host", host, "--port", "0"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error: " in err and "without a token" in err
    for host in ("127.0.0.1", "localhost", "::1"):
        check_binding(host, Settings())
    check_binding("0.0.0.0", Settings(coordinator_token="t"))
    check_binding("0.0.0.0", Settings(coordinator_allow_insecure=True))
    with pytest.raises(ConfigError, match="--allow-insecure"):
        check_binding("0.0.0.0", Settings())


@pytest.fixture
def quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:s3cret-pw@127.0.0.1:1/jobs",  # nothing listens
        "postgresql://bob:s3cret-pw@127.0.0.1:5432/no_such_db_xyz",  # refused by the server
        "postgresql://bob:s3cret-pw@[::1:5432/jobs",  # not a URL
    ],
)
def test_an_unreachable_database_is_one_masked_line_and_exit_2(
    url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    quiet_logs: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SCALEML_COORDINATOR_DB", url)
    assert main(["coordinator", "--port", "0"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: SCALEML_COORDINATOR_DB") and err.count("\n") == 1
    assert "Traceback" not in err
    for text in (out, err, quiet_logs.text):
        assert "s3cret-pw" not in text
    with pytest.raises(ConfigError) as raised:
        JobStore(url)
    assert "s3cret-pw" not in str(raised.value) and "***" in str(raised.value)


def test_a_predict_job_may_write_only_under_the_data_roots(tmp_path: Path) -> None:
    settings = Settings(coordinator_data_roots=[str(tmp_path)])
    spec = {"kind": "predict", "model": "models:/m@champion"}
    spec["dataset"] = {"path": str(tmp_path / "rows"), "target": None}
    check_spec(parse_spec({**spec, "output": str(tmp_path / "out")}), settings, None)
    with pytest.raises(SpecRefused) as refused:
        check_spec(parse_spec({**spec, "output": "/etc/cron.d/scores"}), settings, None)
    assert refused.value.loc == ("output",) and "data roots" in refused.value.message
