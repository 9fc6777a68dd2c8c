"""An adaptive search and a boosting explain their final model automatically when
``explain_sample`` > 0 (the test session sets it to 0): the run holds the global SHAP
importances as metrics (equal to ``explain`` of the final model on the validation blocks),
the importance table and shap's plots."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import Client
from mlflow import MlflowClient
from sklearn.linear_model import SGDClassifier

from scaleml.config import Settings
from scaleml.data import Dataset, write_synthetic
from scaleml.insight import explain
from scaleml.search import IncrementalSearchCV, parse_space
from scaleml.tracking import Tracker, search_and_log, train_boosting_and_log

pytestmark = pytest.mark.slow  # shap plots and a search or boosting each: ~15-30 s
SAMPLE = 150
ARTIFACTS = {
    "explain/importances.json",
    "explain/summary.json",
    "explain/shap_summary.png",
    "explain/shap_bar.png",
    "explain/report.html",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = write_synthetic(
        tmp_path_factory.mktemp("auto-explain") / "data",
        rows=5_000,
        features=5,
        block_rows=1_000,
        random_state=17,
    )
    return Dataset(str(path), target="target")


@pytest.fixture
def explaining(settings: Settings) -> Settings:
    return settings.model_copy(update={"explain_sample": SAMPLE, "explain_plots": True})


def _check_logged(settings: Settings, run_id: str, model, dataset: Dataset, client: Client):
    store = MlflowClient(settings.mlflow_tracking_uri)
    run = store.get_run(run_id)
    assert "scaleml.explain_error" not in run.data.tags
    reference = explain(model, dataset, sample=SAMPLE, part="validation", client=client)
    assert run.data.tags["scaleml.explainer"] == reference.explainer
    for feature, value in zip(reference.features, reference.global_importance, strict=True):
        assert run.data.metrics[f"shap_mean_abs.{feature}"] == pytest.approx(value, rel=1e-6)
    artifacts = {a.path for a in store.list_artifacts(run_id, "explain")}
    assert artifacts >= ARTIFACTS, artifacts
    return run


def test_an_adaptive_search_explains_its_best_model(
    client: Client, explaining: Settings, dataset: Dataset
) -> None:
    space = parse_space({"alpha": {"logspace": {"start": -5, "stop": -1, "num": 10}}})
    search = IncrementalSearchCV(
        SGDClassifier(tol=1e-3, random_state=0),
        space,
        n_initial_parameters=2,
        max_iter=2,
        random_state=0,
        decay_rate=None,
    )
    tracked = search_and_log(search, dataset, tracker=Tracker(explaining), client=client)
    run = _check_logged(explaining, tracked.run_id, search.best_estimator_, dataset, client)
    assert run.data.tags["scaleml.explainer"] == "linear"


def test_a_boosting_explains_its_model(
    client: Client, explaining: Settings, dataset: Dataset, tmp_path: Path
) -> None:
    spec = {
        "estimator": "xgboost.dask.DaskXGBClassifier",
        "params": {"n_estimators": 5, "max_depth": 3},
    }
    tracked = train_boosting_and_log(spec, dataset, tracker=Tracker(explaining), client=client)
    run = _check_logged(explaining, tracked.run_id, tracked.result.model, dataset, client)
    assert run.data.tags["scaleml.explainer"] == "xgboost"
