"""``scaleml explain`` and the coordinator's ``explain`` job kind (``client.explain``) on the
session's cluster and MLflow store: the top features, the report, and bad input as one line
with exit code 2."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import xgboost
from distributed import LocalCluster

from scaleml.cli import main
from scaleml.client import Client
from scaleml.config import Settings
from scaleml.coordinator import create_app
from scaleml.data import Dataset, write_synthetic
from scaleml.tracking import Tracker, register
from tests.coordinator.conftest import TOKEN, ThreadServer, coordinator_settings


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explain-cli") / "data"
    return write_synthetic(path, rows=1_000, features=4, block_rows=250, random_state=8)


@pytest.fixture(scope="module")
def registered(data: Path, mlflow_uri: str) -> str:
    """An XGBoost model registered as ``NAME@champion``; returns NAME."""
    dataset = Dataset(str(data), target="target")
    frame = pd.concat(list(dataset.iter_blocks()), ignore_index=True)
    model = xgboost.XGBClassifier(n_estimators=8, max_depth=2, n_jobs=1)
    model.fit(frame[dataset.features], frame["target"])
    store = Settings(mlflow_tracking_uri=mlflow_uri, experiment=f"ex-{uuid.uuid4().hex[:6]}")
    tracker = Tracker(store)
    name = f"explain-cli-{uuid.uuid4().hex[:6]}"
    with tracker.run(name) as run:
        uri = run.log_native_model(model, "xgboost", dataset.input_example())
    register(uri, name, tracker=tracker)
    return name


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, cluster: LocalCluster, mlflow_uri: str) -> None:
    monkeypatch.setenv("SCALEML_SCHEDULER", cluster.scheduler_address)
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", mlflow_uri)


def test_cli_prints_the_top_features_and_writes_the_report(
    environment: None,
    registered: str,
    data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "shap.html"
    argv = ["explain", "--model", f"{registered}@champion", "--data", str(data)]
    argv += ["--target", "target", "--sample", "100", "--report", str(report), "--no-log"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "explained 1,000 rows with the xgboost explainer (margin of 1)" in out
    assert "mean_abs_shap" in out and "f000" in out
    assert report.exists() and "Bokeh" in report.read_text()[:200_000]


def test_cli_bad_input_is_one_line_and_exit_2(
    environment: None, registered: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_synthetic(tmp_path / "other", rows=100, features=2, block_rows=100)
    argv = ["explain", "--model", f"{registered}@champion", "--data", str(other)]
    assert main([*argv, "--target", "target"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "f002" in err[-1]
    assert main(["explain", "--model", "no-such-model@x", "--data", str(other)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")


@pytest.fixture(scope="module")
def coordinator(
    cluster: LocalCluster, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("explain-coordinator")
    settings = coordinator_settings(cluster, mlflow_uri, f"sqlite:///{tmp / 'jobs.db'}", tmp)
    with ThreadServer(create_app(settings)) as running:
        yield running


def test_explain_job_returns_the_top_features(
    coordinator: ThreadServer, registered: str, data: Path
) -> None:
    with Client(coordinator.url, token=TOKEN) as client:
        job = client.explain(f"models:/{registered}@champion", str(data), target="target",
                             sample=50, log=False)  # fmt: skip
        assert job.wait(timeout=120, poll_s=0.2).state == "SUCCEEDED"
        result = job.status().raw["result"]
    assert result["explainer"] == "xgboost" and result["rows"] == 1_000
    assert result["top_features"][0]["feature"].startswith("f")
    assert result["additivity_max_error"] < 1e-3
