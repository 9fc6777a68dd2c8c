"""``scaleml evaluate`` against the session's cluster and MLflow store: the metrics table,
the report, and one line with exit code 2 for bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster

from scaleml.cli import main


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, cluster: LocalCluster, logged_models: dict) -> dict:
    settings = logged_models["settings"]
    monkeypatch.setenv("SCALEML_SCHEDULER", cluster.scheduler_address)
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("SCALEML_EXPERIMENT", settings.experiment)
    return logged_models


def test_evaluate_prints_metrics_fairness_and_writes_the_report(
    cli_env: dict[str, Any], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    tracked, binary = cli_env["tracked"], cli_env["binary"]
    report = tmp_path / "out" / "report.html"
    code = main(
        [
            "evaluate",
            "--model",
            tracked.model_uri,
            "--data",
            str(binary.source),
            "--target",
            "target",
            "--sensitive",
            "group",
            "--report",
            str(report),
            "--no-log",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "6,000 rows" in out and "roc_auc" in out and "fairness by group:" in out
    assert "demographic_parity_difference" in out
    assert f"report {report}" in out
    assert report.stat().st_size > 100_000  # Bokeh's JavaScript is inlined


@pytest.mark.parametrize(
    ("which", "extra", "message"),
    [
        ("binary", ["--metric", "auc"], "unknown metric 'auc'"),
        ("binary", ["--sensitive", "gender"], "sensitive feature 'gender'"),
        ("regression", ["--metric", "roc_auc"], "'roc_auc' is for classifiers"),
        ("binary", ["--features", "f0,f1,f2"], "do not match the dataset's features"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    cli_env: dict[str, Any],
    capsys: pytest.CaptureFixture,
    which: str,
    extra: list[str],
    message: str,
) -> None:
    uri = cli_env["tracked"].model_uri if which == "binary" else cli_env["ridge_uri"]
    data = cli_env[which].source
    code = main(["evaluate", "--model", uri, "--data", str(data), "--target", "target", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_compare_prints_the_leaderboard_and_logs_a_comparison_run(
    cli_env: dict[str, Any], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    tracked, binary = cli_env["tracked"], cli_env["binary"]
    report = tmp_path / "compare.html"
    by_run = f"runs:/{tracked.run_id}/model"
    models = ["--model", tracked.model_uri, "--model", by_run]
    options = ["--target", "target", "--sort-by", "roc_auc", "--report", str(report)]
    code = main(["compare", *models, "--data", str(binary.source), *options])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["rank", "name", "roc_auc"]
    assert {lines[1].split()[1], lines[2].split()[1]} == {tracked.model_uri, by_run}
    assert report.exists()
    run_id = lines[-1].removeprefix("MLflow run ")
    store = MlflowClient(cli_env["settings"].mlflow_tracking_uri)
    run = store.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["scaleml.kind"] == "comparison"
    paths = {a.path for a in store.list_artifacts(run_id, "insight")}
    assert {"insight/leaderboard.json", "insight/report.html"} <= paths
