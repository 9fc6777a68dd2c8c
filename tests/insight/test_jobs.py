"""The coordinator's insight job kinds through the Python client: a training job evaluates
its model automatically, ``evaluate`` and ``compare`` jobs run on the cluster (a comparison
training a model first too), and a bad metric or train spec is a 422 naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from mlflow import MlflowClient

from scaleml.client import Client, SpecError
from scaleml.coordinator import create_app
from tests.coordinator import conftest as coordinator
from tests.coordinator.conftest import TOKEN, ThreadServer, coordinator_settings, train_spec

# The coordinator tests' fixtures, used here too.
pg_database = coordinator.pg_database
jobs_data = coordinator.jobs_data


@pytest.mark.slow
def test_train_evaluate_and_compare_jobs(
    cluster: LocalCluster, mlflow_uri: str, pg_database: Any, jobs_data: Path, tmp_path: Path
) -> None:
    settings = coordinator_settings(
        cluster,
        mlflow_uri,
        pg_database("insight"),
        tmp_path / "c",
        coordinator_data_roots=[str(jobs_data.parent), str(tmp_path)],
        auto_evaluate=True,
    )
    spec = train_spec(jobs_data, epochs=2)
    spec["estimator"]["params"]["loss"] = "log_loss"
    with ThreadServer(create_app(settings)) as server, Client(server.url, token=TOKEN) as client:
        trained = client.submit(spec).result(timeout=240)
        assert trained.raw["evaluated"] is True
        store = MlflowClient(mlflow_uri)
        run = store.get_run(trained.run_id)
        assert 0.5 < run.data.metrics["eval_accuracy"] <= 1.0
        assert "insight/report.html" in {
            a.path for a in store.list_artifacts(trained.run_id, "insight")
        }

        dataset = {"path": str(jobs_data), "target": "target"}
        report = tmp_path / "job-report.html"
        evaluated = client.evaluate(
            trained.model_uri, dataset, split="all", output=str(report)
        ).result(timeout=240)
        assert evaluated.raw["rows"] == 2_000
        assert evaluated.raw["metrics"]["accuracy"] > 0.5 and report.exists()

        compared = client.compare(
            [trained.model_uri, f"runs:/{trained.run_id}/model"], dataset, sort_by="log_loss"
        ).result(timeout=240)
        board = compared.raw["leaderboard"]
        assert [row["rank"] for row in board] == [1, 2] and board[0]["log_loss"] is not None
        assert store.get_run(compared.run_id).info.status == "FINISHED"

        with pytest.raises(SpecError, match="metrics"):
            client.evaluate(trained.model_uri, dataset, metrics=["auc_roc"])

        # A comparison that first trains a model (in a run nested under the comparison's).
        sgd = {"estimator": {"estimator": "SGDClassifier", "params": {"loss": "log_loss"}}}
        compare_job = client.compare(
            [trained.model_uri], dataset, train=[{**sgd, "name": "sgd-new"}], split="all"
        )
        with_training = compare_job.result(timeout=240)
        board = with_training.raw["leaderboard"]
        assert {row["name"] for row in board} == {trained.model_uri, "sgd-new"}
        parent = store.get_run(with_training.run_id)
        children = store.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{with_training.run_id}'",
        )
        assert [c.info.run_name for c in children] == ["sgd-new"]
        assert parent.info.status == "FINISHED"
        # Both runs are the job's (found by its id, as a restarted coordinator looks for them).
        for run in (parent, children[0]):
            assert run.data.tags["scaleml.job_id"] == compare_job.id
        with pytest.raises(SpecError, match=r"train.*NoSuchForest"):
            client.compare([], dataset, train=[{"estimator": "NoSuchForest"}])
