import subprocess
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pytest
from distributed import Client
from mlflow import MlflowClient
from sklearn.linear_model import SGDClassifier

import scaleml
from scaleml.config import Settings
from scaleml.data import Dataset
from scaleml.errors import TrackingError
from scaleml.tracking import (
    Tracker,
    alias_version,
    load_model,
    register,
    train_and_log,
)


def _store(settings: Settings) -> MlflowClient:
    return MlflowClient(settings.mlflow_tracking_uri)


def test_a_training_run_holds_params_epoch_metrics_dataset_model_and_tags(
    client: Client, classification: Dataset, any_store_settings: Settings
) -> None:
    settings = any_store_settings
    tracker = Tracker(settings)
    tracked = train_and_log(
        SGDClassifier(loss="log_loss", alpha=3e-4, random_state=0),
        classification,
        tracker=tracker,
        client=client,
        epochs=3,
        random_state=1,
    )
    run = _store(settings).get_run(tracked.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == tracker.experiment_id
    params = run.data.params
    assert params["estimator"] == "sklearn.linear_model._stochastic_gradient.SGDClassifier"
    assert params["alpha"] == "0.0003" and params["loss"] == "log_loss"
    assert params["train.epochs"] == "3"
    assert params["dataset.n_rows"] == "60000"
    assert params["dataset.fingerprint"] == classification.fingerprint
    history = _store(settings).get_metric_history(tracked.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == [r.scores["accuracy"] for r in tracked.result.history]
    assert len(_store(settings).get_metric_history(tracked.run_id, "val_log_loss")) == 3
    assert run.data.metrics["training_seconds"] > 0
    assert run.data.metrics["rows_trained"] == 3 * 48_000
    assert run.data.tags["scaleml.version"] == scaleml.__version__
    commit = subprocess.run(
        ["git", "-C", str(Path(scaleml.__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode == 0:
        assert run.data.tags["scaleml.git_commit"] == commit.stdout.strip()
    else:
        assert "scaleml.git_commit" not in run.data.tags
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.digest == classification.fingerprint[:36]

    info = mlflow.models.get_model_info(tracked.model_uri)
    assert [c["name"] for c in info.signature.inputs.to_dict()] == classification.features
    assert info.saved_input_example_info is not None
    example = classification.input_example(5)
    loaded = load_model(tracked.model_uri, settings=settings)
    np.testing.assert_array_equal(
        loaded.predict(example), tracked.result.estimator.predict(example)
    )


def test_a_run_that_raises_is_marked_failed_with_the_reason(
    client: Client, classification: Dataset, settings: Settings
) -> None:
    tracker = Tracker(settings)

    def interrupt(report) -> None:
        raise RuntimeError("validation store unreachable")

    with pytest.raises(RuntimeError, match="unreachable"):
        train_and_log(
            SGDClassifier(), classification, tracker=tracker, client=client, on_epoch_end=interrupt
        )
    runs = _store(settings).search_runs([tracker.experiment_id])
    assert len(runs) == 1
    assert runs[0].info.status == "FAILED"
    assert runs[0].data.tags["scaleml.error"] == "RuntimeError: validation store unreachable"


def test_a_worker_error_also_fails_the_run(
    client: Client, classification: Dataset, settings: Settings
) -> None:
    from sklearn.naive_bayes import MultinomialNB

    tracker = Tracker(settings)
    with pytest.raises(ValueError, match="Negative values"):
        train_and_log(MultinomialNB(), classification, tracker=tracker, client=client)
    (run,) = _store(settings).search_runs([tracker.experiment_id])
    assert run.info.status == "FAILED"


def test_registering_twice_moves_the_alias_to_the_new_version(
    client: Client, classification: Dataset, any_store_settings: Settings
) -> None:
    settings = any_store_settings
    tracker = Tracker(settings)
    name = f"model-{tracker.experiment_name}"
    first = train_and_log(
        SGDClassifier(random_state=0),
        classification,
        tracker=tracker,
        client=client,
        register_as=name,
    )
    assert first.registered_version == "1"
    assert alias_version(name, "champion", settings=settings) == "1"
    second = train_and_log(
        SGDClassifier(alpha=0.01, random_state=0), classification, tracker=tracker, client=client
    )
    moved = register(second, name, alias="champion", tracker=tracker)
    assert moved.version == "2"
    assert moved.uri == f"models:/{name}@champion"
    assert alias_version(name, "champion", settings=settings) == "2"
    served = load_model(moved.uri, settings=settings)
    example = classification.input_example(20)
    np.testing.assert_array_equal(served.predict(example), second.result.estimator.predict(example))
    # A second alias can point at the old version.
    register(first, name, alias="previous", tracker=tracker)
    assert alias_version(name, "previous", settings=settings) == "3"


def test_unknown_models_and_aliases_are_tracking_errors(settings: Settings) -> None:
    with pytest.raises(TrackingError, match="no model version nothing@champion"):
        alias_version("nothing", "champion", settings=settings)
    with pytest.raises(TrackingError, match="cannot load model models:/nothing@champion"):
        load_model("models:/nothing@champion", settings=settings)


def test_experiments_keep_their_artifacts_where_the_settings_say(
    settings: Settings, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    located = settings.model_copy(update={"mlflow_artifact_location": str(artifacts)})
    tracker = Tracker(located)
    with tracker.run("with-artifacts") as run:
        run.log_dict({"answer": 42}, "answer.json")
    experiment = _store(settings).get_experiment(tracker.experiment_id)
    assert experiment.artifact_location == artifacts.resolve().as_uri()
    [written] = artifacts.rglob("answer.json")
    assert written.read_text().strip().startswith("{")


def test_a_notebooks_own_mlflow_experiment_does_not_stop_logging(
    client: Client, classification: Dataset, settings: Settings
) -> None:
    mlflow.set_tracking_uri(str(settings.mlflow_tracking_uri))
    mlflow.set_experiment(f"the-users-own-{uuid.uuid4().hex[:8]}")
    try:
        tracked = train_and_log(
            SGDClassifier(random_state=0), classification, tracker=Tracker(settings), client=client
        )
        assert MlflowClient(settings.mlflow_tracking_uri).get_run(tracked.run_id).info.status == (
            "FINISHED"
        )
        assert mlflow.tracking.fluent._active_experiment_id is not None  # the user's, kept
    finally:
        mlflow.tracking.fluent._active_experiment_id = None
