"""SHAP explanations computed on the cluster: additive on every row, equal to shap (or the
library's own TreeSHAP) computed in one process on the same rows, for binary and multiclass
models of every explainer kind; bad input is a typed error naming the problem."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import shap
import xgboost
from distributed import Client
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDRegressor
from sklearn.neural_network import MLPClassifier

from scaleml.data import Dataset, NonFiniteValueError, write_synthetic
from scaleml.insight import ExplainError, explain

FEATURES = [f"f{i:03d}" for i in range(6)]


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = write_synthetic(
        tmp_path_factory.mktemp("explain") / "bin",
        rows=3_000,
        features=6,
        block_rows=1_000,
        random_state=3,
    )
    return Dataset(str(path), target="target")


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = write_synthetic(
        tmp_path_factory.mktemp("explain") / "multi",
        rows=3_000,
        features=6,
        block_rows=1_000,
        n_classes=3,
        random_state=4,
    )
    return Dataset(str(path), target="target")


def _frame(dataset: Dataset) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.concat(list(dataset.iter_blocks()), ignore_index=True)
    return frame[FEATURES], frame["target"].to_numpy()


def _training(dataset: Dataset) -> pd.DataFrame:
    return pd.concat(list(dataset.iter_blocks(dataset.train_blocks)), ignore_index=True)[FEATURES]


def _rows_of(explanation, x: pd.DataFrame) -> np.ndarray:
    """Positions in ``x`` of the explanation's sampled rows (matched on their values)."""
    keys = {tuple(row): i for i, row in enumerate(x.to_numpy())}
    return np.array([keys[tuple(row)] for row in explanation.sample_data[FEATURES].to_numpy()])


def _check_additive(explanation) -> None:
    total = explanation.base_values[None, :] + explanation.sample_values.sum(axis=2)
    np.testing.assert_allclose(total, explanation.sample_output, atol=1e-4)
    assert explanation.additivity_max_error <= explanation.additivity_tolerance * max(
        1.0, float(np.abs(explanation.sample_output).max())
    )


@pytest.mark.parametrize("data", ["binary", "multiclass"])
def test_xgboost_contributions_equal_one_process_treeshap(
    client: Client, request: pytest.FixtureRequest, data: str
) -> None:
    dataset = request.getfixturevalue(data)
    x, y = _frame(dataset)
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(x, y)
    result = explain(model, dataset, sample=300, client=client)
    assert (result.explainer, result.output, result.n_rows) == ("xgboost", "margin", 3_000)
    assert len(result.output_names) == (1 if data == "binary" else 3)
    _check_additive(result)
    rows = _rows_of(result, x)
    reference = model.get_booster().predict(xgboost.DMatrix(x.iloc[rows]), pred_contribs=True)
    reference = reference.reshape(len(rows), -1, len(FEATURES) + 1)
    np.testing.assert_allclose(result.sample_values, reference[:, :, :-1], atol=1e-6)
    # shap's own TreeSHAP agrees (float32 in XGBoost: a looser bound)
    values = shap.TreeExplainer(model).shap_values(x.iloc[rows])
    values = values if values.ndim == 3 else values[:, :, None]
    np.testing.assert_allclose(result.values.reshape(values.shape), values, atol=2e-5)
    # global importances are over every row, not the sample
    full = model.get_booster().predict(xgboost.DMatrix(x), pred_contribs=True)
    full = np.abs(full.reshape(len(x), -1, len(FEATURES) + 1)[:, :, :-1]).mean(axis=0)
    np.testing.assert_allclose(result.mean_abs, full, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("data", ["binary", "multiclass"])
def test_lightgbm_contributions_equal_one_process(
    client: Client, request: pytest.FixtureRequest, data: str
) -> None:
    dataset = request.getfixturevalue(data)
    x, y = _frame(dataset)
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, n_jobs=1, verbose=-1)
    model.fit(x, y)
    result = explain(model, dataset, sample=200, client=client)
    assert (result.explainer, result.output) == ("lightgbm", "margin")
    _check_additive(result)
    rows = _rows_of(result, x)
    reference = np.asarray(model.predict(x.iloc[rows], pred_contrib=True))
    reference = reference.reshape(len(rows), -1, len(FEATURES) + 1)[:, :, :-1]
    np.testing.assert_allclose(result.sample_values, reference, atol=1e-6)


@pytest.mark.parametrize("data", ["binary", "multiclass"])
def test_random_forest_equals_shap_tree_explainer(
    client: Client, request: pytest.FixtureRequest, data: str
) -> None:
    dataset = request.getfixturevalue(data)
    x, y = _frame(dataset)
    model = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(x, y)
    result = explain(model, dataset, sample=150, client=client)
    assert (result.explainer, result.output) == ("tree", "probability")
    assert result.output_names == [str(c) for c in model.classes_]
    _check_additive(result)
    rows = _rows_of(result, x)
    values = shap.TreeExplainer(model).shap_values(x.iloc[rows].to_numpy())
    np.testing.assert_allclose(result.values, values, atol=1e-6)
    np.testing.assert_allclose(result.sample_output, model.predict_proba(x.iloc[rows]), atol=1e-12)


@pytest.mark.parametrize("data", ["binary", "multiclass"])
def test_linear_model_equals_shap_linear_explainer(
    client: Client, request: pytest.FixtureRequest, data: str
) -> None:
    dataset = request.getfixturevalue(data)
    x, y = _frame(dataset)
    model = LogisticRegression(max_iter=500).fit(x, y)
    result = explain(model, dataset, sample=200, client=client)
    assert (result.explainer, result.output) == ("linear", "margin")
    _check_additive(result)
    training = _training(dataset)
    # the background mean was computed out of core over the training blocks
    np.testing.assert_allclose(result.background.mean, training.mean().to_numpy(), rtol=1e-10)
    rows = _rows_of(result, x)
    masker = shap.maskers.Independent(training.to_numpy(), max_samples=len(training))
    values = shap.LinearExplainer(model, masker).shap_values(x.iloc[rows].to_numpy())
    np.testing.assert_allclose(result.values, values, atol=1e-6)


def test_linear_regressor_explains_its_prediction(client: Client, binary: Dataset) -> None:
    x, _ = _frame(binary)
    model = SGDRegressor(random_state=0).fit(x, x.f000 * 2 - x.f001)
    result = explain(model, binary, sample=100, client=client)
    assert (result.explainer, result.output, result.output_names) == (
        "linear",
        "prediction",
        ["prediction"],
    )
    _check_additive(result)
    assert result.top_features(2) == ["f000", "f001"]


@pytest.mark.parametrize("data", ["binary", "multiclass"])
def test_model_agnostic_equals_shap_kernel_explainer(
    client: Client, request: pytest.FixtureRequest, data: str
) -> None:
    dataset = request.getfixturevalue(data)
    x, y = _frame(dataset)
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=0).fit(x, y)
    result = explain(model, dataset, sample=40, background_rows=30, client=client)
    assert (result.explainer, result.output, result.n_rows) == ("agnostic", "probability", 40)
    _check_additive(result)
    rows = _rows_of(result, x)
    background = result.background.rows.to_numpy()
    assert len(background) == 30
    # every coalition of the 6 features: the exact Shapley values against the background
    reference = shap.KernelExplainer(model.predict_proba, background).shap_values(
        x.iloc[rows].to_numpy(), nsamples=2**6 - 2, l1_reg=False, silent=True
    )
    np.testing.assert_allclose(result.values, reference, atol=1e-6)


def test_bad_input_is_a_typed_error(client: Client, binary: Dataset, tmp_path: Path) -> None:
    x, y = _frame(binary)
    model = LogisticRegression().fit(x.rename(columns={"f005": "income"}), y)
    with pytest.raises(ExplainError, match="'income' is not in the dataset"):
        explain(model, binary, client=client)
    with pytest.raises(ExplainError, match="sample must be"):
        explain(model, binary, sample=-1, client=client)
    with pytest.raises(ExplainError, match="part must be"):
        explain(LogisticRegression().fit(x, y), binary, part="test", client=client)
    frame = x.assign(target=y).head(200).copy()
    frame.loc[17, "f002"] = np.nan
    (tmp_path / "bad").mkdir()
    frame.to_parquet(tmp_path / "bad" / "part.parquet")
    with pytest.raises(NonFiniteValueError, match="'f002'"):
        explain(
            LogisticRegression().fit(x, y), Dataset(str(tmp_path / "bad"), "target"), client=client
        )
