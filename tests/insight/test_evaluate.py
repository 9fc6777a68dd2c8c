"""``evaluate`` on a real LocalCluster: every metric against scikit-learn on the same rows,
fairness against fairlearn's MetricFrame, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    selection_rate,
)
from scipy.stats import ks_2samp
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier

from scaleml.data import Dataset
from scaleml.insight import (
    SensitiveFeatureError,
    SignatureMismatchError,
    UnknownMetricError,
    evaluate,
)
from tests.insight.conftest import FEATURES

EXACT = 1e-9


def _rows(dataset: Dataset) -> pd.DataFrame:
    """The validation rows, read here, as the reference implementations need them."""
    columns = [*FEATURES, "target", "group", "region"]
    return pd.concat([dataset.blocks[i].read(columns) for i in dataset.validation_blocks])


@pytest.fixture(scope="module")
def binary(insight_data: dict[str, Path]) -> tuple[Dataset, Any, pd.DataFrame]:
    dataset = Dataset(str(insight_data["binary"]), target="target", features=FEATURES)
    rows = _rows(dataset)
    model = LogisticRegression().fit(rows[FEATURES].to_numpy()[::2], rows["target"][::2])
    return dataset, model, rows


@pytest.fixture(scope="module")
def binary_result(binary: tuple, client: Any) -> Any:
    dataset, model, _ = binary
    return evaluate(model, dataset, client=client, sensitive_features=["group"])


def test_binary_classifier_metrics_equal_scikit_learn(binary: tuple, binary_result: Any) -> None:
    _, model, rows = binary
    x, y = rows[FEATURES].to_numpy(), rows["target"].to_numpy()
    pred, proba = model.predict(x), model.predict_proba(x)[:, 1]
    m = binary_result.metrics
    exact = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "jaccard": skm.jaccard_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "precision_weighted": skm.precision_score(y, pred, average="weighted"),
        "mcc": skm.matthews_corrcoef(y, pred),
        "cohen_kappa": skm.cohen_kappa_score(y, pred),
        "hamming_loss": skm.hamming_loss(y, pred),
        "zero_one_loss": skm.zero_one_loss(y, pred),
        "log_loss": skm.log_loss(y, model.predict_proba(x)),
        "brier_score": skm.brier_score_loss(y, proba),
    }
    for name, expected in exact.items():
        assert m[name] == pytest.approx(expected, abs=EXACT), name
    assert binary_result.rows == len(rows)
    np.testing.assert_array_equal(binary_result.confusion_matrix, skm.confusion_matrix(y, pred))
    # From histograms: within the bound computed with each evaluation (and it is small).
    auc = skm.roc_auc_score(y, proba)
    assert abs(m["roc_auc"] - auc) <= m["roc_auc_error_bound"] < 1e-3
    ap = skm.average_precision_score(y, proba)
    assert abs(m["average_precision"] - ap) <= m["average_precision_error_bound"] < 1e-2
    ks = ks_2samp(proba[y == 1], proba[y == 0]).statistic
    assert -EXACT <= ks - m["ks_statistic"] <= m["ks_error_bound"] < 0.05
    # Curves: exact at their points, calibration as scikit-learn's.
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=10)
    calibration = binary_result.curves["calibration"]["1"]
    np.testing.assert_allclose(calibration["prob_true"], prob_true, atol=EXACT)
    np.testing.assert_allclose(calibration["prob_pred"], prob_pred, atol=EXACT)
    roc = binary_result.curves["roc"]["1"]
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and roc["fpr"][-1] == 1
    threshold = binary_result.curves["thresholds"]
    at_half = threshold["threshold"].index(0.5)
    assert threshold["precision"][at_half] == pytest.approx(skm.precision_score(y, proba > 0.5))
    assert threshold["recall"][at_half] == pytest.approx(skm.recall_score(y, proba > 0.5))


def test_fairness_by_group_equals_fairlearn(binary: tuple, binary_result: Any) -> None:
    _, model, rows = binary
    x, y, group = rows[FEATURES].to_numpy(), rows["target"].to_numpy(), rows["group"]
    pred = model.predict(x)
    frame = MetricFrame(
        metrics={
            "accuracy": skm.accuracy_score,
            "recall": skm.recall_score,
            "f1": skm.f1_score,
            "selection_rate": selection_rate,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=group,
    )
    fair = binary_result.fairness
    for name in frame.by_group.columns:
        for label, expected in frame.by_group[name].items():
            assert fair["by_group"][label][name] == pytest.approx(expected, abs=EXACT)
        assert fair["difference"][name] == pytest.approx(frame.difference()[name], abs=EXACT)
        assert fair["ratio"][name] == pytest.approx(frame.ratio()[name], abs=EXACT)
    assert fair["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=group), abs=EXACT
    )
    assert fair["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=group), abs=EXACT
    )


def test_multiclass_metrics_and_intersectional_groups(
    insight_data: dict[str, Path], client: Any
) -> None:
    dataset = Dataset(str(insight_data["multiclass"]), target="target", features=FEATURES)
    rows = _rows(dataset)
    x, y = rows[FEATURES].to_numpy(), rows["target"].to_numpy()
    model = LogisticRegression().fit(x[::2], y[::2])
    result = evaluate(model, dataset, client=client, sensitive_features=["group", "region"])
    pred, proba = model.predict(x), model.predict_proba(x)
    m = result.metrics
    for average in ("macro", "weighted"):
        for name, function in (
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
            ("jaccard", skm.jaccard_score),
        ):
            expected = function(y, pred, average=average)
            assert m[f"{name}_{average}"] == pytest.approx(expected, abs=EXACT), (name, average)
    per_class_f1 = skm.f1_score(y, pred, average=None)
    assert [result.per_class[str(c)]["f1"] for c in (0, 1, 2)] == pytest.approx(per_class_f1)
    for name, expected in {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "mcc": skm.matthews_corrcoef(y, pred),
        "cohen_kappa": skm.cohen_kappa_score(y, pred),
        "log_loss": skm.log_loss(y, proba),
        "brier_score": skm.brier_score_loss(y, proba, labels=[0, 1, 2]),
    }.items():
        assert m[name] == pytest.approx(expected, abs=EXACT), name
    auc = skm.roc_auc_score(y, proba, multi_class="ovr")
    assert abs(m["roc_auc"] - auc) <= m["roc_auc_error_bound"] < 1e-3
    ap = skm.average_precision_score(y, proba)
    assert abs(m["average_precision"] - ap) <= m["average_precision_error_bound"] < 1e-2
    assert "precision" not in m and "ks_statistic" not in m  # binary-only metrics
    # Groups are the combinations of both columns, as fairlearn's.
    frame = MetricFrame(
        metrics=skm.accuracy_score,
        y_true=y,
        y_pred=pred,
        sensitive_features=rows[["group", "region"]],
    )
    for (group, region), expected in frame.by_group.items():
        by_group = result.fairness["by_group"][f"{group} | {region}"]
        assert by_group["accuracy"] == pytest.approx(expected, abs=EXACT)
    assert result.fairness["difference"]["accuracy"] == pytest.approx(frame.difference())


def test_regressor_metrics_equal_scikit_learn(insight_data: dict[str, Path], client: Any) -> None:
    dataset = Dataset(str(insight_data["regression"]), target="target", features=FEATURES)
    rows = _rows(dataset)
    x, y = rows[FEATURES].to_numpy(), rows["target"].to_numpy()
    model = Ridge().fit(x[::3], y[::3])
    result = evaluate(model, dataset, client=client, sensitive_features="group")
    pred = model.predict(x)
    m = result.metrics
    for name, expected in {
        "mae": skm.mean_absolute_error(y, pred),
        "mse": skm.mean_squared_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "explained_variance": skm.explained_variance_score(y, pred),
        "max_error": skm.max_error(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
        "residual_mean": float(np.mean(y - pred)),
        "residual_std": float(np.std(y - pred)),
    }.items():
        assert m[name] == pytest.approx(expected, rel=EXACT, abs=EXACT), name
    median = skm.median_absolute_error(y, pred)
    assert m["median_absolute_error"] == pytest.approx(median, rel=1.2e-3, abs=1e-9)
    frame = MetricFrame(
        metrics=skm.mean_absolute_error, y_true=y, y_pred=pred, sensitive_features=rows["group"]
    )
    for label, expected in frame.by_group.items():
        assert result.fairness["by_group"][label]["mae"] == pytest.approx(expected, rel=EXACT)
    assert len(result.curves["predicted_vs_actual"]["actual"]) == min(len(rows), 300)  # a sample
    assert "roc" not in result.curves


def test_bad_input_is_named_before_any_work(
    binary: tuple, insight_data: dict[str, Path], client: Any
) -> None:
    dataset, model, rows = binary
    with pytest.raises(UnknownMetricError, match="'auc_roc'"):
        evaluate(model, dataset, metrics=["auc_roc"], client=client)
    with pytest.raises(SensitiveFeatureError, match="'gender'"):
        evaluate(model, dataset, sensitive_features=["gender"], client=client)
    regression = Dataset(str(insight_data["regression"]), target="target", features=FEATURES)
    regressor = Ridge().fit(rows[FEATURES].to_numpy(), rows["target"])
    with pytest.raises(UnknownMetricError, match="'roc_auc' is for classifiers"):
        evaluate(regressor, regression, metrics=["roc_auc"], client=client)
    narrow = Dataset(str(insight_data["binary"]), target="target", features=FEATURES[:3])
    with pytest.raises(SignatureMismatchError, match="takes 5 feature"):
        evaluate(model, narrow, client=client)
    hinge = SGDClassifier(loss="hinge").fit(rows[FEATURES].to_numpy(), rows["target"])
    with pytest.raises(UnknownMetricError, match="predict_proba"):
        evaluate(hinge, dataset, metrics=["log_loss"], client=client)
    # A model without probabilities still gets its exact metrics.
    plain = evaluate(hinge, dataset, metrics=["accuracy", "mcc"], client=client)
    assert set(plain.metrics) == {"accuracy", "mcc"}
