"""Evaluations logged to MLflow: metrics with the ``eval_`` prefix, the dataset as an input,
the report and JSON results as artifacts, the learning history of the model's run; a failed
evaluation's run ends FAILED."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from scaleml.config import Settings
from scaleml.data import Dataset, NonFiniteValueError
from scaleml.insight import SignatureMismatchError, evaluate
from tests.insight.conftest import FEATURES


@pytest.fixture(scope="module")
def trained(logged_models: dict[str, Any]) -> Any:
    return logged_models["settings"], logged_models["binary"], logged_models["tracked"]


def test_evaluation_of_a_logged_model_goes_to_its_run(trained: Any, client: Any) -> None:
    settings, dataset, tracked = trained
    result = evaluate(tracked.model_uri, dataset, log=True, settings=settings, client=client)
    assert result.model_uri == tracked.model_uri
    assert [p[0] for p in result.history["epochs"]["val_accuracy"]] == [1, 2, 3]

    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    run = mlflow.get_run(tracked.run_id)
    assert run.data.metrics["eval_accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert run.data.metrics["eval_roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    artifacts = {a.path for a in mlflow.list_artifacts(tracked.run_id, "insight")}
    assert artifacts == {
        "insight/report.html",
        "insight/metrics.json",
        "insight/curves.json",
    }
    saved = json.loads(
        Path(mlflow.download_artifacts(tracked.run_id, "insight/metrics.json")).read_text()
    )
    assert saved["metrics"]["f1"] == pytest.approx(result.metrics["f1"])
    page = Path(mlflow.download_artifacts(tracked.run_id, "insight/report.html")).read_text()
    assert "Learning curves" in page and "Bokeh" in page
    # The dataset is the run's input (MLflow keeps one input per dataset digest and run).
    digests = {item.dataset.digest for item in run.inputs.dataset_inputs}
    assert dataset.fingerprint[:36] in digests


def test_signature_mismatch_names_the_columns(trained: Any, client: Any, insight_data) -> None:
    settings, _, tracked = trained
    other = Dataset(
        str(insight_data["binary"]), target="target", features=[*FEATURES[:4], "region"]
    )
    with pytest.raises(SignatureMismatchError, match="missing \\['f4'\\]"):
        evaluate(tracked.model_uri, other, settings=settings, client=client)


def test_a_failed_evaluation_ends_its_run_failed(
    insight_data: dict[str, Path], client: Any, settings: Settings, tmp_path: Path
) -> None:
    source = insight_data["binary"]
    bad = tmp_path / "bad"
    bad.mkdir()
    for index, path in enumerate(sorted(source.glob("*.parquet"))):
        table = pq.read_table(path)
        if index == 0:
            column = table.column("f2").to_numpy().copy()
            column[7] = np.nan
            table = table.set_column(table.schema.get_field_index("f2"), "f2", pa.array(column))
        pq.write_table(table, bad / path.name)
    dataset = Dataset(str(bad), target="target", features=FEATURES)
    rows = dataset.read_block(1)
    model = LogisticRegression().fit(rows[FEATURES].to_numpy(), rows["target"])
    with pytest.raises(NonFiniteValueError, match="f2"):
        evaluate(model, dataset, split="all", log=True, settings=settings, client=client)
    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    (run,) = mlflow.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert "f2" in run.data.tags["scaleml.error"]


def test_evaluation_and_comparison_read_back_from_each_store(
    insight_data: dict[str, Path], client: Any, any_store_settings: Settings
) -> None:
    """On SQLite and on a real ``mlflow server`` (artifacts served over HTTP): the metrics,
    the report and the JSON results read back through ``MlflowClient``."""
    from scaleml.insight import compare_logged

    settings = any_store_settings
    dataset = Dataset(str(insight_data["binary"]), target="target", features=FEATURES)
    rows = dataset.read_block(0)
    x, y = rows[FEATURES].to_numpy(), rows["target"]
    strong = LogisticRegression().fit(x, y)
    weak = LogisticRegression(C=1e-4).fit(x[:, :1], y)  # one feature seen, padded below
    weak.coef_ = np.hstack([weak.coef_, np.zeros((1, len(FEATURES) - 1))])
    weak.n_features_in_ = len(FEATURES)

    result = evaluate(strong, dataset, split="all", log=True, settings=settings, client=client)
    comparison = compare_logged(
        {"strong": strong, "weak": weak}, dataset, split="all", settings=settings, client=client
    )

    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    runs = {r.data.tags["scaleml.kind"]: r for r in mlflow.search_runs([experiment.experiment_id])}
    evaluation, compared = runs["evaluation"], runs["comparison"]
    assert compared.info.run_id == comparison.run_id
    assert evaluation.data.metrics["eval_accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert evaluation.data.metrics["eval_log_loss"] == pytest.approx(result.metrics["log_loss"])
    for run in (evaluation, compared):
        run_id = run.info.run_id
        artifacts = {a.path for a in mlflow.list_artifacts(run_id, "insight")}
        assert {"insight/report.html", "insight/metrics.json", "insight/curves.json"} <= artifacts
        page = Path(mlflow.download_artifacts(run_id, "insight/report.html")).read_text()
        assert "Bokeh" in page and len(page) > 100_000  # self-contained: Bokeh's JS inlined
    saved = json.loads(
        Path(mlflow.download_artifacts(evaluation.info.run_id, "insight/metrics.json")).read_text()
    )
    assert saved["metrics"]["f1"] == pytest.approx(result.metrics["f1"])
    board = json.loads(
        Path(mlflow.download_artifacts(comparison.run_id, "insight/leaderboard.json")).read_text()
    )["leaderboard"]
    assert [row["name"] for row in board] == ["strong", "weak"]
    assert compared.data.tags["scaleml.best_model"] == "strong"
    assert compared.data.metrics["eval_accuracy"] == pytest.approx(
        comparison.best.metrics["accuracy"]
    )
