"""A coordinator `predict` job scores a dataset on the cluster with a model from MLflow."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster
from sklearn.linear_model import LogisticRegression

from scaleml.coordinator import create_app
from tests.coordinator.conftest import ThreadServer, coordinator_settings, http, wait_for


@pytest.mark.slow
def test_a_predict_job_writes_the_models_predictions(
    cluster: LocalCluster, mlflow_uri: str, pg_database: Any, jobs_data: Path, tmp_path: Path
) -> None:
    rows = pd.concat([pd.read_parquet(p) for p in sorted(jobs_data.glob("*.parquet"))])
    features = [c for c in rows.columns if c != "target"]
    model = LogisticRegression().fit(rows[features], rows["target"])
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment(f"predict-job-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run():
        uri = mlflow.sklearn.log_model(model, name="model").model_uri
    settings = coordinator_settings(
        cluster,
        mlflow_uri,
        pg_database("predict"),
        tmp_path / "c",
        coordinator_data_roots=[str(jobs_data.parent), str(tmp_path)],  # the session's data
    )
    spec = {
        "kind": "predict",
        "model": uri,
        "dataset": {"path": str(jobs_data)},
        "output": str(tmp_path / "scores"),
        "keep": ["target"],
    }
    with ThreadServer(create_app(settings)) as server, http(server.url) as api:
        invalid = api.post("/jobs", json={**spec, "output": ""})
        assert invalid.status_code == 422 and "output" in invalid.text
        created = api.post("/jobs", json=spec)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        def ended() -> dict[str, Any] | None:
            job = api.get(f"/jobs/{job_id}").json()
            return job if job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

        job = wait_for(ended, 240, what="the predict job to end")
    assert job["state"] == "SUCCEEDED", job["error"]
    assert job["result"]["rows"] == len(rows) == 2_000
    written = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "scores").glob("*"))])
    np.testing.assert_array_equal(written["target"], rows["target"])
    np.testing.assert_array_equal(written["prediction"], model.predict(rows[features]))
    np.testing.assert_allclose(written["probability_1"], model.predict_proba(rows[features])[:, 1])
