"""``compare(..., train=[spec, ...])``: estimator families trained at once on the cluster (an
incremental one out of core, XGBoost and LightGBM with the Dask boosting), each in a run nested
under the comparison's, then ranked in one pass like separately computed scores; bad specs fail
before anything trains, and a training that fails ends the comparison's run FAILED."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn import metrics as skm

from scaleml.cli import main
from scaleml.config import Settings
from scaleml.data import Dataset
from scaleml.insight import CandidateSpecError, compare
from scaleml.tracking import load_evaluable
from tests.insight.conftest import FEATURES

SGD = {"estimator": {"estimator": "SGDClassifier", "params": {"loss": "log_loss"}}, "epochs": 2}
XGB = {"estimator": {"estimator": "DaskXGBClassifier", "params": {"n_estimators": 20}}}
LGBM = {"estimator": "DaskLGBMClassifier", "params": {"n_estimators": 20, "verbose": -1}}


def _runs(settings: Settings) -> list[Any]:
    store = MlflowClient(settings.mlflow_tracking_uri)
    experiment = store.get_experiment_by_name(settings.experiment)
    return [] if experiment is None else store.search_runs([experiment.experiment_id])


@pytest.mark.slow
def test_compare_trains_sgd_xgboost_and_lightgbm_at_once_and_ranks_them(
    insight_data: dict[str, Path], client: Any, settings: Settings
) -> None:
    dataset = Dataset(str(insight_data["binary"]), target="target", features=FEATURES)
    comparison = compare(
        [], dataset, train=[SGD, XGB, LGBM], split="all", client=client, settings=settings
    )

    rows = pd.concat(dataset.iter_blocks())
    expected = {}
    for row in comparison.leaderboard:
        model = load_evaluable(row["model_uri"], settings=settings).model
        predicted = model.predict(rows[FEATURES])
        expected[row["name"]] = skm.accuracy_score(rows["target"], predicted)
        assert row["accuracy"] == pytest.approx(expected[row["name"]], abs=1e-9)
    assert set(expected) == {"SGDClassifier", "DaskXGBClassifier", "DaskLGBMClassifier"}
    assert [r["name"] for r in comparison.leaderboard] == sorted(
        expected, key=expected.get, reverse=True
    )

    store = MlflowClient(settings.mlflow_tracking_uri)
    parent = store.get_run(comparison.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["compare.trained"] == "3"
    children = {
        r.info.run_name: r
        for r in _runs(settings)
        if r.data.tags.get("mlflow.parentRunId") == comparison.run_id
    }
    assert set(children) == set(expected)
    for name, child in children.items():
        assert child.info.status == "FINISHED"
        uri = next(r["model_uri"] for r in comparison.leaderboard if r["name"] == name)
        assert load_evaluable(uri, settings=settings).run_id == child.info.run_id
        # The comparison's pass logged each trained model's evaluation into its own run.
        assert child.data.metrics["eval_accuracy"] == pytest.approx(expected[name], abs=1e-9)
    # The two trainings ran at the same time.
    sgd, xgb = children["SGDClassifier"].info, children["DaskXGBClassifier"].info
    assert sgd.start_time < xgb.end_time and xgb.start_time < sgd.end_time


def test_a_bad_spec_fails_before_anything_trains(
    insight_data: dict[str, Path], client: Any, settings: Settings
) -> None:
    dataset = Dataset(str(insight_data["binary"]), target="target", features=FEATURES)
    before = len(_runs(settings))
    bad_specs = {
        "not on the allow-list": {"estimator": "NoSuchForest"},
        "unknown parameter": {"estimator": "SGDClassifier", "params": {"alphaa": 1}},
        "does not apply": {**XGB, "epochs": 3},
        "neither incremental": {"estimator": "LogisticRegression"},
    }
    for message, bad in bad_specs.items():
        with pytest.raises(CandidateSpecError, match=rf"train\[1\].*{message}"):
            compare([], dataset, train=[SGD, bad], client=client, settings=settings)
    assert len(_runs(settings)) == before  # no run was started, nothing was trained


def test_a_failed_training_ends_the_comparison_run_failed(
    insight_data: dict[str, Path], client: Any, settings: Settings
) -> None:
    dataset = Dataset(str(insight_data["binary"]), target="target", features=FEATURES)
    negative_features = {"estimator": "MultinomialNB"}  # the features are normal: some < 0
    with pytest.raises(ValueError, match=r"[Nn]egative"):
        compare([], dataset, train=[negative_features], client=client, settings=settings)
    runs = _runs(settings)
    parent = next(r for r in runs if r.data.tags.get("scaleml.kind") == "comparison")
    child = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)
    assert parent.info.status == "FAILED" and child.info.status == "FAILED"


def test_cli_compare_rejects_a_bad_train_spec_with_exit_2(
    insight_data: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    spec_file = tmp_path / "specs.json"
    spec_file.write_text('[{"estimator": "SGDClassifier", "params": {"alpha": -1}}]')
    data = ["--data", str(insight_data["binary"]), "--target", "target"]
    for train in (spec_file, '{"estimator": "NoSuchForest"}', "{not json", tmp_path / "none"):
        code = main(["compare", "--train", str(train), *data])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert len(err) == 1 and err[0].startswith("error: ") and "train" in err[0], err


@pytest.mark.slow
def test_cli_compare_trains_then_prints_the_leaderboard(
    insight_data: dict[str, Path],
    cluster: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("SCALEML_SCHEDULER", cluster.scheduler_address)
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("SCALEML_EXPERIMENT", settings.experiment)
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps([{**SGD, "name": "sgd-a"}, {**SGD, "epochs": 1}]))
    argv = ["compare", "--train", str(specs), "--data", str(insight_data["binary"])]
    argv += ["--target", "target", "--features", ",".join(FEATURES), "--split", "all"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "sgd-a" in out and "SGDClassifier" in out and "6,000 rows" in out
    (parent,) = [r for r in _runs(settings) if r.data.tags.get("scaleml.kind") == "comparison"]
    assert f"MLflow run {parent.info.run_id}" in out
    nested = [r for r in _runs(settings) if r.data.tags.get("mlflow.parentRunId")]
    assert sorted(r.info.run_name for r in nested) == ["SGDClassifier", "sgd-a"]
