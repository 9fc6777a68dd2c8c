"""The scaleml command: --help everywhere, one line and exit code 2 on bad input."""

import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster
from mlflow import MlflowClient

from scaleml.cli import main

COMMANDS = [[], ["demo"], ["train"], ["data"], ["data", "synth"], ["data", "describe"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "scaleml")
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main([*command, "--help"]) == 0
    assert "Usage: scaleml" in capsys.readouterr().out


def _fails_with_one_line(argv: list[str], capsys: pytest.CaptureFixture, expected: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert expected in err, err


def test_missing_required_option(capsys: pytest.CaptureFixture) -> None:
    _fails_with_one_line(["train", "--target", "y"], capsys, "Missing option '--data'")


def test_unknown_command_and_bad_number(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    _fails_with_one_line(["fly"], capsys, "No such command 'fly'")
    _fails_with_one_line(["data", "synth", str(tmp_path / "d"), "--rows", "many"], capsys, "many")


def test_missing_file(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    argv = ["train", "--data", str(tmp_path / "none.parquet"), "--target", "y"]
    _fails_with_one_line([*argv, "--estimator", "SGDClassifier"], capsys, "no such file")


def test_missing_target_column(capsys: pytest.CaptureFixture, classification_path: Path) -> None:
    argv = ["train", "--data", str(classification_path), "--target", "label"]
    _fails_with_one_line(
        [*argv, "--estimator", "SGDClassifier"], capsys, "target column 'label' is not in"
    )


def test_non_numeric_feature(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    pd.DataFrame({"age": [30, 40], "city": ["Oslo", "Lima"], "y": [0, 1]}).to_csv(path, index=False)
    argv = ["train", "--data", str(path), "--target", "y", "--estimator", "SGDClassifier"]
    _fails_with_one_line(argv, capsys, "feature column 'city' is not numeric")


def test_estimator_off_the_allow_list_and_bad_params(
    capsys: pytest.CaptureFixture, classification_path: Path
) -> None:
    argv = ["train", "--data", str(classification_path), "--target", "target"]
    _fails_with_one_line([*argv, "--estimator", "os.system"], capsys, "not on the allow-list")
    _fails_with_one_line(
        [*argv, "--estimator", "SGDClassifier", "--param", "alpah=1"], capsys, "['alpah']"
    )
    _fails_with_one_line(
        [*argv, "--estimator", "SGDClassifier", "--param", "alpha"], capsys, "key=value"
    )


def test_invalid_setting(capsys: pytest.CaptureFixture, monkeypatch, classification_path) -> None:
    monkeypatch.setenv("SCALEML_N_WORKERS", "none")
    argv = ["train", "--data", str(classification_path), "--target", "target"]
    _fails_with_one_line([*argv, "--estimator", "SGDClassifier"], capsys, "SCALEML_N_WORKERS")


def test_data_synth_and_describe(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "made"
    assert main(["data", "synth", str(path), "--rows", "5000", "--features", "3"]) == 0
    assert "wrote 5,000 rows x 3 features" in capsys.readouterr().out
    assert main(["data", "describe", str(path), "--target", "target"]) == 0
    out = capsys.readouterr().out
    assert '"n_rows": 5000' in out and '"f002": "float64"' in out
    _fails_with_one_line(["data", "synth", str(path), "--rows", "10"], capsys, "already exists")


def test_train_on_a_running_cluster_logs_and_registers(
    cluster: LocalCluster, classification_path: Path, tmp_path: Path
) -> None:
    """The installed console script, end to end, against this session's cluster."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = f"cli-{uuid.uuid4().hex[:8]}"
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
        "train",
        "--data",
        str(classification_path),
        "--target",
        "target",
        "--estimator",
        "SGDClassifier",
        "--param",
        "loss=log_loss",
        "--param",
        "alpha=1e-4",
        "--epochs",
        "2",
        "--register",
        "cli-model",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "epoch 2:" in done.stdout
    assert "registered models:/cli-model@champion (version 1)" in done.stdout
    assert f"scheduler {cluster.scheduler_address}" in done.stderr
    store = MlflowClient(uri, registry_uri=uri)
    (run,) = store.search_runs([store.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["loss"] == "log_loss"
    assert run.data.metrics["val_accuracy"] > 0.7
    # The final model was evaluated into its run (SCALEML_AUTO_EVALUATE defaults to true).
    assert run.data.metrics["eval_accuracy"] > 0.7
    assert "evaluated on" in done.stdout
    version = store.get_model_version_by_alias("cli-model", "champion")
    assert version.run_id == run.info.run_id
    assert np.isfinite(run.data.metrics["rows_per_second"])
