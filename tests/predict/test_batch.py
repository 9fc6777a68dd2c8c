"""Batch scoring: the written predictions equal the model's own on the same rows; bad input is
one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster
from sklearn.linear_model import LogisticRegression

from scaleml.cli import main
from scaleml.data import Dataset, NonFiniteValueError
from scaleml.predict import predict_dataset


@pytest.fixture(scope="module")
def scored_data(tmp_path_factory: pytest.TempPathFactory, classification_path: Path) -> Path:
    """The classification data with a key column ``row_id`` that is not a feature."""
    path = tmp_path_factory.mktemp("predict") / "keyed"
    path.mkdir()
    offset = 0
    for file in sorted(classification_path.glob("*.parquet")):
        frame = pd.read_parquet(file)
        frame.insert(0, "row_id", np.arange(offset, offset + len(frame)))
        offset += len(frame)
        frame.to_parquet(path / file.name, row_group_size=3_000)
    return path


@pytest.fixture(scope="module")
def model(scored_data: Path) -> LogisticRegression:
    frame = pd.read_parquet(sorted(scored_data.glob("*.parquet"))[0])
    features = [c for c in frame.columns if c.startswith("f")]
    return LogisticRegression().fit(frame[features], frame["target"])


def _read(output: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(output.glob("*.parquet"))])


def test_predictions_equal_the_models_on_the_same_rows(
    client: Client, scored_data: Path, model: LogisticRegression, tmp_path: Path
) -> None:
    features = list(model.feature_names_in_)
    dataset = Dataset(str(scored_data), target=None, features=features, max_block_rows=3_000)
    done: list[int] = []
    result = predict_dataset(
        model,
        dataset,
        tmp_path / "out",
        keep=["row_id", "target"],
        client=client,
        on_block_done=lambda n, total: done.append(n),
    )
    assert result.rows == 60_000 and len(result.files) == dataset.n_blocks == 20
    assert done[-1] == 20
    assert result.columns == ["row_id", "target", "prediction", "probability_0", "probability_1"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in result.files]
    written = _read(tmp_path / "out")
    rows = pd.concat([pd.read_parquet(p) for p in sorted(scored_data.glob("*.parquet"))])
    np.testing.assert_array_equal(written["row_id"], rows["row_id"])
    np.testing.assert_array_equal(written["target"], rows["target"])
    np.testing.assert_array_equal(written["prediction"], model.predict(rows[features]))
    np.testing.assert_allclose(
        written[["probability_0", "probability_1"]], model.predict_proba(rows[features])
    )
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary directory left


def test_bad_rows_fail_and_leave_no_output(
    client: Client, model: LogisticRegression, tmp_path: Path
) -> None:
    frame = pd.DataFrame(np.ones((50, 8)), columns=model.feature_names_in_)
    frame.loc[31, "f004"] = np.inf
    frame.to_parquet(tmp_path / "rows.parquet")
    dataset = Dataset(str(tmp_path / "rows.parquet"), target=None)
    with pytest.raises(NonFiniteValueError, match=r"'f004'.*row 31"):
        predict_dataset(model, dataset, tmp_path / "out", client=client)
    assert [p.name for p in tmp_path.iterdir()] == ["rows.parquet"]


def _logged(model: LogisticRegression, uri: str) -> str:
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(f"predict-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run():
        return mlflow.sklearn.log_model(model, name="model").model_uri


def test_bad_input_is_one_line_and_exit_code_2(
    scored_data: Path,
    model: LogisticRegression,
    tmp_path: Path,
    mlflow_uri: str,
    monkeypatch,
    capsys,
) -> None:
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", mlflow_uri)
    uri = _logged(model, mlflow_uri)
    capsys.readouterr()  # MLflow's own log lines
    base = ["predict", "--model", uri, "--data", str(scored_data), "--output"]
    cases = [
        ([*base, str(tmp_path / "o"), "--keep", "nope"], "['nope'] are not in the dataset"),
        ([*base, str(scored_data)], "already exists"),
        ([*base, str(tmp_path / "o"), "--features", "f000,zz"], "['zz']"),
        (
            [
                "predict",
                "--model",
                "models:/no-such-model@champion",
                "--data",
                "x",
                "--output",
                "o",
            ],
            "no-such-model",
        ),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and expected in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_the_predict_command_scores_on_the_cluster(
    cluster: LocalCluster,
    scored_data: Path,
    model: LogisticRegression,
    tmp_path: Path,
    mlflow_uri: str,
) -> None:
    uri = _logged(model, mlflow_uri)
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "SCALEML_SCHEDULER": cluster.scheduler_address,
        "SCALEML_MLFLOW_TRACKING_URI": mlflow_uri,
    }
    command = [
        str(Path(sys.executable).parent / "scaleml"),
        *("predict", "--model", uri, "--data", str(scored_data)),
        *("--output", str(tmp_path / "scores"), "--keep", "row_id", "--no-probabilities"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote 60,000 predictions (row_id, prediction)" in done.stdout
    written = _read(tmp_path / "scores")
    rows = pd.concat([pd.read_parquet(p) for p in sorted(scored_data.glob("*.parquet"))])
    np.testing.assert_array_equal(written["row_id"], rows["row_id"])
    features = list(model.feature_names_in_)
    np.testing.assert_array_equal(written["prediction"], model.predict(rows[features]))
    assert pq.read_schema(sorted((tmp_path / "scores").glob("*.parquet"))[0]).names == [
        "row_id",
        "prediction",
    ]
