"""With ``SCALEML_AUTO_EVALUATE`` on, an adaptive search and a boosting started from the CLI
evaluate their final model into their run: ``eval_`` metrics and ``insight/report.html``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from distributed import LocalCluster
from mlflow import MlflowClient

from scaleml.cli import main
from tests.insight.conftest import FEATURES


@pytest.fixture
def auto_env(monkeypatch: pytest.MonkeyPatch, cluster: LocalCluster, mlflow_uri: str) -> str:
    """The CLI on the session's cluster and store, automatic evaluation on (the session turns
    it off); returns the experiment's name."""
    experiment = f"auto-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SCALEML_AUTO_EVALUATE", "true")
    monkeypatch.setenv("SCALEML_SCHEDULER", cluster.scheduler_address)
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("SCALEML_EXPERIMENT", experiment)
    return experiment


def _final_run(mlflow_uri: str, experiment: str) -> tuple[MlflowClient, object]:
    store = MlflowClient(mlflow_uri)
    found = store.get_experiment_by_name(experiment)
    runs = store.search_runs([found.experiment_id])
    (top,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return store, top


@pytest.mark.slow
@pytest.mark.parametrize("command", ["search", "boost"])
def test_search_and_boosting_evaluate_their_final_model(
    command: str,
    auto_env: str,
    mlflow_uri: str,
    insight_data: dict[str, Path],
    capsys: pytest.CaptureFixture,
) -> None:
    data = ["--data", str(insight_data["binary"]), "--target", "target"]
    data += ["--features", ",".join(FEATURES)]
    if command == "search":
        argv = [
            "search",
            *data,
            "--estimator",
            "SGDClassifier",
            "--param",
            "loss=log_loss",
            "--method",
            "incremental",
            "--space",
            '{"alpha": [0.0001, 0.01]}',
            "--max-iter",
            "2",
            "--n-initial-parameters",
            "2",
            "--random-state",
            "0",
        ]
    else:
        argv = ["boost", *data, "--estimator", "DaskXGBClassifier", "--param", "n_estimators=10"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "evaluated on" in out and "insight/report.html" in out

    store, run = _final_run(mlflow_uri, auto_env)
    assert run.info.status == "FINISHED"
    assert 0.5 < run.data.metrics["eval_accuracy"] <= 1.0
    assert "eval_roc_auc" in run.data.metrics
    artifacts = {a.path for a in store.list_artifacts(run.info.run_id, "insight")}
    assert {"insight/report.html", "insight/metrics.json"} <= artifacts
    assert run.data.tags["scaleml.evaluated"] == "true"
    assert int(run.data.tags["scaleml.eval_rows"]) > 0
