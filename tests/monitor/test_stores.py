"""Contracts and provenance on either MLflow store: the session's SQLite store, and a real
``mlflow server`` whose artifacts are served over HTTP (the contract is downloaded from it)."""

from __future__ import annotations

import pytest
from distributed import Client
from mlflow import MlflowClient
from sklearn.linear_model import SGDClassifier

from scaleml.cli import main
from scaleml.config import Settings
from scaleml.data import Dataset
from scaleml.monitor import contract
from scaleml.tracking import Tracker, train_and_log


@pytest.mark.slow
def test_contract_and_model_card_on_any_store(
    client: Client,
    classification: Dataset,
    any_store_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = any_store_settings
    tracker = Tracker(settings)
    name = f"card-{tracker.experiment_name}"
    trained = train_and_log(
        SGDClassifier(random_state=0), classification, tracker=tracker, client=client,
        register_as=name,
    )  # fmt: skip
    store = MlflowClient(settings.mlflow_tracking_uri)
    artifacts = store.get_run(trained.run_id).info.artifact_uri
    if str(settings.mlflow_tracking_uri).startswith("http"):
        assert artifacts.startswith("mlflow-artifacts:"), artifacts  # served by the server

    found = contract(f"models:/{name}@champion", settings=settings)
    assert set(found.features) == set(classification.features) and found.output is not None
    assert found.dataset["fingerprint"] == classification.fingerprint
    block = classification.read_block(classification.train_blocks[0])
    found.to_pandera().validate(block[classification.features])
    version = store.get_model_version(name, "1")
    assert version.tags["scaleml.run_id"] == trained.run_id
    assert version.tags["scaleml.dataset_fingerprint"] == classification.fingerprint
    assert version.tags["scaleml.cluster_workers"] == "2"

    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", str(settings.mlflow_tracking_uri))
    assert main(["models", "show", f"{name}@champion"]) == 0
    card = capsys.readouterr().out
    assert f"model card: {name} version 1" in card
    for expected in ("aliases     champion", "cluster_workers", "input   f000",
                     "feature  f003", "output   prediction", "fingerprint"):  # fmt: skip
        assert expected in card, expected
