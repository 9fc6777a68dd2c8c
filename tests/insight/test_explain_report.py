"""An explanation logged with its model: importances as metrics and a table, the background as
data (loaded back equal), shap's plots and the report, on a SQLite store and on a real
``mlflow server`` over HTTP; the report renders in headless Chromium with no console errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client
from mlflow import MlflowClient
from sklearn.linear_model import SGDClassifier

from scaleml.config import Settings
from scaleml.data import Dataset, write_synthetic
from scaleml.tracking import Tracker, train_and_log
from scaleml.tracking._explain import load_background
from tests.browser import Browser


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = write_synthetic(
        tmp_path_factory.mktemp("explain-report") / "data",
        rows=2_000,
        features=5,
        block_rows=500,
        n_classes=3,
        random_state=11,
    )
    return Dataset(str(path), target="target")


def test_training_logs_its_final_models_explanation_and_the_report_renders(
    client: Client, any_store_settings: Settings, dataset: Dataset, browser: Browser, tmp_path: Path
) -> None:
    """The automatic explanation of a training's final model (a bounded sample, plots and
    report on), as ``scaleml explain`` logs it too."""
    settings = any_store_settings
    store = settings.model_copy(update={"explain_sample": 300, "explain_plots": True})
    tracked = train_and_log(
        SGDClassifier(random_state=0), dataset, tracker=Tracker(store), epochs=1, client=client
    )
    run_id, uri = tracked.run_id, tracked.model_uri

    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    run = mlflow.get_run(run_id)
    assert "scaleml.explain_error" not in run.data.tags
    assert run.data.tags["scaleml.explainer"] == "linear"
    assert run.data.tags["scaleml.explained_output"] == "margin"
    summary = json.loads(
        Path(mlflow.download_artifacts(run_id, "explain/summary.json", str(tmp_path))).read_text()
    )
    assert summary["outputs"] == ["0", "1", "2"] and summary["sample_rows"] == 300
    explanation_rows = len(dataset.validation_blocks) * 500
    assert summary["n_rows"] == explanation_rows  # every validation row, not the sample
    importances = summary["mean_abs_shap"]
    metrics = run.data.metrics
    top = max(dataset.features, key=lambda f: sum(importances[o][f] for o in importances))
    average = sum(importances[o][top] for o in importances) / 3
    assert metrics[f"shap_mean_abs.{top}"] == pytest.approx(average)
    assert metrics[f"shap_mean_abs.2.{top}"] == pytest.approx(importances["2"][top])
    artifacts = {a.path for a in mlflow.list_artifacts(run_id, "explain")}
    assert {
        "explain/importances.json",
        "explain/summary.json",
        "explain/background.json",
        "explain/background.parquet",
        "explain/report.html",
        "explain/shap_summary.png",
        "explain/shap_bar.png",
        "explain/shap_force.png",
        "explain/shap_decision.png",
        f"explain/shap_dependence_{top}.png",
    } <= artifacts

    background = load_background(uri, settings=settings)
    assert background is not None
    training = pd.concat(list(dataset.iter_blocks(dataset.train_blocks)))[dataset.features]
    np.testing.assert_allclose(background.mean, training.mean().to_numpy(), rtol=1e-10)

    report = Path(mlflow.download_artifacts(run_id, "explain/report.html", str(tmp_path)))
    text = report.read_text()
    assert "cdn.bokeh.org" not in text and "https://" not in text.split("<body", 1)[0]
    page = browser.open(report.as_uri())
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=20_000)
    roots = page.evaluate("() => Bokeh.documents[0].roots().length")
    # Bokeh draws in shadow roots: Playwright's locators pierce them
    images = page.locator("img").evaluate_all("all => all.map(i => i.naturalWidth)")
    page.screenshot(path=str(tmp_path / "explain-report.png"), full_page=True)
    assert browser.errors == []
    assert roots >= 1
    assert len(images) >= 7 and min(images) > 0  # shap's PNGs decoded
    assert page.get_by_text("SHAP explanations").count() >= 1
