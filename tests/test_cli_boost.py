"""`scaleml boost`: distributed XGBoost / LightGBM from the command line, logged to MLflow."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from distributed import LocalCluster
from mlflow import MlflowClient

from scaleml.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--estimator", "SGDClassifier"], "estimator must be one of"),
        (["--estimator", "LGBMClassifier", "--param", "verbos=-1"], "['verbos']"),
        (["--estimator", "XGBClassifier", "--param", "max_depth=-3"], "'max_depth'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    argv: list[str], expected: str, classification_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["boost", "--data", str(classification_path), "--target", "target"]
    assert main([*base, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and expected in err, err


@pytest.mark.slow
def test_boost_trains_logs_and_registers(
    cluster: LocalCluster, classification_path: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = f"boost-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "SCALEML_SCHEDULER": cluster.scheduler_address,
        "SCALEML_MLFLOW_TRACKING_URI": uri,
        "SCALEML_EXPERIMENT": experiment,
        "SCALEML_MLFLOW_ARTIFACT_LOCATION": str(tmp_path / "artifacts"),
    }
    command = [
        str(Path(sys.executable).parent / "scaleml"),
        *("boost", "--data", str(classification_path), "--target", "target"),
        *("--estimator", "LGBMClassifier", "--param", "n_estimators=30", "--param", "verbose=-1"),
        *("--early-stopping-rounds", "5", "--eval-metric", "binary_logloss"),
        *("--register", "boosted"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "best iteration" in done.stdout and "registered models:/boosted@champion" in done.stdout
    store = MlflowClient(uri, registry_uri=uri)
    (run,) = store.search_runs([store.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["verbose"] == "-1"
    assert run.data.params["library"] == "lightgbm"
    assert run.data.metrics["score_accuracy"] > 0.7
    assert store.get_model_version_by_alias("boosted", "champion").run_id == run.info.run_id
