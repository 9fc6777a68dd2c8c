"""Distributed boosting (xgboost.dask, LightGBM's Dask estimators) on a real LocalCluster, and
its MLflow logging with the native flavors on a real SQLite store."""

from pathlib import Path

import dask.array as da
import mlflow
import numpy as np
import pandas as pd
import pytest
from distributed import Client
from mlflow import MlflowClient
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss

from scaleml.config import Settings
from scaleml.data import Dataset, write_synthetic
from scaleml.errors import EstimatorSpecError, TrainingError
from scaleml.tracking import Tracker, train_boosting_and_log
from scaleml.train import train_boosting

N_ESTIMATORS = 300
PATIENCE = 8
# Noisy labels (drawn from a logistic model) and a high learning rate: the validation loss
# bottoms out after a few dozen rounds, far before N_ESTIMATORS.
SPECS = {
    "xgboost": {
        "estimator": "xgboost.dask.DaskXGBClassifier",
        "params": {"n_estimators": N_ESTIMATORS, "learning_rate": 0.3, "max_depth": 6},
    },
    "lightgbm": {
        "estimator": "lightgbm.DaskLGBMClassifier",
        "params": {"n_estimators": N_ESTIMATORS, "learning_rate": 0.3, "num_leaves": 63},
    },
}
HISTORY_METRIC = {"xgboost": "logloss", "lightgbm": "binary_logloss"}


@pytest.fixture(scope="module")
def boosting_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40,000 rows x 8 features in 10 Parquet blocks of 4,000 (8 train, 2 validation)."""
    path = tmp_path_factory.mktemp("boosting") / "noisy"
    return write_synthetic(path, rows=40_000, features=8, block_rows=4_000, random_state=11)


@pytest.fixture
def dataset(boosting_path: Path) -> Dataset:
    return Dataset(str(boosting_path), target="target")


def _validation_rows(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    frames = list(dataset.iter_blocks(dataset.validation_blocks))
    x = np.vstack([f[dataset.features].to_numpy() for f in frames])
    y = np.concatenate([f[dataset.target].to_numpy() for f in frames])
    return x, y


@pytest.mark.slow
@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_training_on_a_dataset_stops_early_logs_rounds_and_registers_a_servable_model(
    library: str, client: Client, dataset: Dataset, settings: Settings
) -> None:
    tracker = Tracker(settings)
    name = f"boost-{library}-{tracker.experiment_name}"
    tracked = train_boosting_and_log(
        SPECS[library],
        dataset,
        tracker=tracker,
        client=client,
        early_stopping_rounds=PATIENCE,
        register_as=name,
        alias="champion",
    )
    result = tracked.result
    assert result.library == library

    # Early stopping stopped the training: PATIENCE rounds without improvement after the best.
    assert result.stopped_early
    assert result.n_rounds < N_ESTIMATORS
    assert result.n_rounds == result.best_iteration + PATIENCE + 1
    losses = result.history[HISTORY_METRIC[library]]
    assert len(losses) == result.n_rounds
    assert result.best_iteration == int(np.argmin(losses))

    # The history and the scores are over every validation row: recompute them here.
    x_val, y_val = _validation_rows(dataset)
    probabilities = result.model.predict_proba(_frame(dataset, x_val))[:, 1]
    assert losses[result.best_iteration] == pytest.approx(log_loss(y_val, probabilities), rel=1e-5)
    predictions = result.model.predict(_frame(dataset, x_val))
    assert result.scores["accuracy"] == pytest.approx(accuracy_score(y_val, predictions))
    assert result.scores["accuracy"] > 0.7

    # MLflow: per-round validation metric as step metrics, summary metrics, params, model.
    store = MlflowClient(settings.mlflow_tracking_uri)
    run = store.get_run(tracked.run_id)
    assert run.info.status == "FINISHED"
    logged = store.get_metric_history(tracked.run_id, f"val_{HISTORY_METRIC[library]}")
    assert [m.step for m in sorted(logged, key=lambda m: m.step)] == list(range(result.n_rounds))
    assert [m.value for m in sorted(logged, key=lambda m: m.step)] == losses
    assert run.data.metrics["best_iteration"] == result.best_iteration
    assert run.data.metrics["n_rounds"] == result.n_rounds
    assert run.data.metrics["training_seconds"] > 0
    assert run.data.params["n_estimators"] == str(N_ESTIMATORS)
    assert run.data.params["train.early_stopping_rounds"] == str(PATIENCE)
    assert run.data.params["dataset.fingerprint"] == dataset.fingerprint
    assert run.data.tags["scaleml.stopped_early"] == "True"
    info = mlflow.models.get_model_info(tracked.model_uri)
    assert library in info.flavors
    assert [c["name"] for c in info.signature.inputs.to_dict()] == dataset.features
    assert info.saved_input_example_info is not None

    # The registered model loads with pyfunc by alias and predicts as the in-process model.
    assert tracked.registered_version == "1"
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    rows = _frame(dataset, x_val[:500])
    np.testing.assert_array_equal(
        np.asarray(served.predict(rows)).ravel(), result.model.predict(rows)
    )


def _frame(dataset: Dataset, x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=dataset.features)


@pytest.mark.parametrize("spec", ["XGBRegressor", "LGBMRegressor"])
def test_dask_collections_with_an_eval_set(spec: str, client: Client) -> None:
    rng = da.random.default_rng(3)
    x = rng.standard_normal((12_000, 4), chunks=(2_000, 4))
    y = x[:, 0] * 2.0 + x[:, 1] + 0.1 * rng.standard_normal(12_000, chunks=2_000)
    x_val = rng.standard_normal((3_000, 4), chunks=(1_000, 4))
    y_val = x_val[:, 0] * 2.0 + x_val[:, 1]
    result = train_boosting(
        {"estimator": spec, "params": {"n_estimators": 40, "learning_rate": 0.3}},
        x,
        y,
        eval_set=(x_val, y_val),
        client=client,
        early_stopping_rounds=5,
    )
    assert result.estimator.__class__.__name__ == f"Dask{spec}"
    assert result.features is None and result.input_example.shape == (5, 4)
    assert len(next(iter(result.history.values()))) == result.n_rounds
    x_local, y_local = client.compute([x_val, y_val], sync=True)
    assert result.scores["r2"] == pytest.approx(result.model.score(x_local, y_local))
    assert result.scores["r2"] > 0.9


def _no_validation(dataset: Dataset) -> Dataset:
    return Dataset(dataset.source, target="target", validation_fraction=0.0)


XGB = "xgboost.dask.DaskXGBClassifier"
LGBM = "lightgbm.DaskLGBMClassifier"


@pytest.mark.parametrize(
    ("spec", "options", "error", "match"),
    [
        ({"estimator": XGB, "params": {"n_estimators": 0}}, {}, TrainingError, "'n_estimators'"),
        ({"estimator": XGB, "params": {"learning_rate": -1}}, {}, TrainingError, "'learning_rate'"),
        ({"estimator": XGB, "params": {"subsample": 1.5}}, {}, TrainingError, "'subsample'"),
        ({"estimator": XGB, "params": {"max_depth": 2.5}}, {}, TrainingError, "'max_depth'"),
        ({"estimator": LGBM, "params": {"num_leaves": 1}}, {}, TrainingError, "'num_leaves'"),
        (
            {"estimator": LGBM, "params": {"n_estimatorz": 3}},
            {},
            EstimatorSpecError,
            "n_estimatorz",
        ),
        ({"estimator": "SGDClassifier"}, {}, TrainingError, "estimator must be one of"),
        ({"estimator": "pickle.loads"}, {}, EstimatorSpecError, "allow-list"),
        ({"estimator": XGB}, {"early_stopping_rounds": 0}, TrainingError, "early_stopping_rounds"),
        ({"estimator": XGB}, {"eval_metric": 5}, TrainingError, "eval_metric"),
        ({"estimator": LGBM}, {"y": "target"}, TrainingError, "y and eval_set"),
    ],
)
def test_bad_arguments_are_typed_errors_before_any_work(
    spec: dict, options: dict, error: type, match: str, dataset: Dataset
) -> None:
    # A client that fails on any use proves that nothing reached the cluster.
    with pytest.raises(error, match=match):
        train_boosting(spec, dataset, client=object(), **options)  # type: ignore[arg-type]


def test_data_that_is_not_on_the_cluster_is_refused(dataset: Dataset) -> None:
    x = np.zeros((10, 2))
    with pytest.raises(TrainingError, match="data must be a scaleml Dataset or a dask"):
        train_boosting({"estimator": XGB}, x, np.zeros(10), client=object())
    with pytest.raises(TrainingError, match="y is required"):
        train_boosting({"estimator": XGB}, da.from_array(x), client=object())


def test_early_stopping_without_validation_data_is_refused(dataset: Dataset) -> None:
    with pytest.raises(TrainingError, match="early_stopping_rounds needs validation data"):
        train_boosting(
            {"estimator": LGBM}, _no_validation(dataset), client=object(), early_stopping_rounds=3
        )
    with pytest.raises(TrainingError, match="early_stopping_rounds needs validation data"):
        train_boosting(
            {"estimator": XGB, "params": {"early_stopping_rounds": 3}},
            _no_validation(dataset),
            client=object(),
        )


def test_estimator_instances_with_non_json_params_are_refused(dataset: Dataset) -> None:
    import xgboost

    with pytest.raises(EstimatorSpecError, match="'callbacks'"):
        train_boosting(xgboost.XGBClassifier(callbacks=[print]), dataset, client=object())
    with pytest.raises(TrainingError, match="estimator must be one of"):
        train_boosting(SGDClassifier(), dataset, client=object())


def test_a_training_that_fails_on_the_cluster_leaves_a_failed_run(
    client: Client, regression_path: Path, settings: Settings
) -> None:
    # A classifier on a continuous target: XGBoost refuses the labels on the workers.
    tracker = Tracker(settings)
    continuous = Dataset(str(regression_path), target="target")
    with pytest.raises(ValueError, match="label must be discrete"):
        train_boosting_and_log(
            {"estimator": XGB, "params": {"n_estimators": 5}},
            continuous,
            tracker=tracker,
            client=client,
        )
    (run,) = MlflowClient(settings.mlflow_tracking_uri).search_runs([tracker.experiment_id])
    assert run.info.status == "FAILED"
    assert "label must be discrete" in run.data.tags["scaleml.error"]
