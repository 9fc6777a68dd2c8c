"""A job over bad data ends FAILED with the one-line message naming the file, column and row,
and its MLflow run FAILED with the same message (a real coordinator, cluster and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster
from mlflow import MlflowClient

from scaleml.coordinator import create_app
from scaleml.data import write_synthetic
from tests.coordinator.conftest import ThreadServer, coordinator_settings, http, wait_for


@pytest.mark.slow
def test_a_boost_job_over_infinite_values_fails_naming_file_column_and_row(
    cluster: LocalCluster, mlflow_uri: str, pg_database: Any, tmp_path: Path
) -> None:
    data = write_synthetic(tmp_path / "d", rows=2_000, features=4, block_rows=500, random_state=2)
    table = pq.read_table(data / "part-00001.parquet")
    values = table.column("f002").to_numpy().copy()
    values[44] = np.inf
    spoiled = table.set_column(2, "f002", pa.array(values))
    pq.write_table(spoiled, data / "part-00001.parquet", row_group_size=500)
    settings = coordinator_settings(cluster, mlflow_uri, pg_database("bad"), tmp_path / "c")
    spec = {
        "kind": "boost",
        "estimator": {"estimator": "XGBClassifier", "params": {"n_estimators": 3}},
        "dataset": {"path": str(data), "target": "target", "validation_fraction": 0.25},
    }
    with ThreadServer(create_app(settings)) as server, http(server.url) as api:
        created = api.post("/jobs", json=spec)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        def ended() -> dict[str, Any] | None:
            job = api.get(f"/jobs/{job_id}").json()
            return job if job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

        job = wait_for(ended, 240, what="the job to end")
    assert job["state"] == "FAILED"
    assert job["error"].startswith("NonFiniteValueError: "), job["error"]
    for part in ("part-00001.parquet", "'f002'", "row 44"):
        assert part in job["error"], job["error"]
    run = MlflowClient(mlflow_uri).get_run(job["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert "row 44" in run.data.tags["scaleml.error"]
