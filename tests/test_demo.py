"""``scaleml demo`` end to end, as a user runs it: a subprocess, a fresh working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest


@pytest.mark.slow
def test_demo_trains_searches_registers_and_serves_the_champion(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        **os.environ,
        "SCALEML_MLFLOW_TRACKING_URI": store,
        "SCALEML_DATA_DIR": str(tmp_path / "data"),
        "SCALEML_CACHE_DIR": str(tmp_path / "cache"),
        "SCALEML_DASHBOARD_ADDRESS": ":0",
        "SCALEML_N_WORKERS": "2",
    }
    argv = [sys.executable, "-m", "scaleml.cli", "demo", "--rows", "40000", "--epochs", "2"]
    done = subprocess.run(
        [*argv, "--max-iter", "9"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for step in range(1, 8):
        assert f"[{step}/7]" in out, out
    assert "leaderboard" in out
    assert "insight: the champion against the incremental model" in out
    assert (tmp_path / "data" / "demo-insight-report.html").stat().st_size > 100_000
    assert "POST /invocations, one row at a time: [" in out
    assert "curl -s http://127.0.0.1:" in out
    assert "SHAP (linear explainer, margin) over" in out  # the champion's top features
    assert "POST /explain, one row: base" in out and "/explain -H" in out
    assert (tmp_path / "data" / "demo-classification-40000").is_dir()

    # The champion is in the registry and predicts, from a fresh process's point of view.
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    model = mlflow.pyfunc.load_model("models:/scaleml-demo@champion")
    rows = pd.read_parquet(tmp_path / "data" / "demo-classification-40000").head(50)
    predicted = np.asarray(model.predict(rows.drop(columns="target")))
    assert set(np.unique(predicted)) <= {0, 1}
    assert (predicted == rows["target"].to_numpy()).mean() > 0.6
