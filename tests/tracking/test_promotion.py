"""The promotion gate: a new version takes the alias only when it scores at least as well as
the alias's holder on the same validation blocks, unless forced (``always``) or kept
(``never``); the gateway keeps serving the holder."""

from __future__ import annotations

import httpx
import pytest
from distributed import Client, LocalCluster
from sklearn.linear_model import SGDClassifier

from scaleml.cli import main
from scaleml.config import Settings
from scaleml.data import Dataset
from scaleml.errors import ConfigError
from scaleml.gateway import serve_in_background
from scaleml.tracking import Tracker, alias_version, train_and_log


def _good() -> SGDClassifier:
    return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)


def _worse() -> SGDClassifier:
    # A huge penalty: the weights shrink to almost nothing, the accuracy falls to about half.
    return SGDClassifier(loss="log_loss", alpha=50.0, random_state=0)


def test_a_worse_model_takes_the_alias_only_when_forced(
    client: Client, classification: Dataset, settings: Settings
) -> None:
    tracker = Tracker(settings)
    name = f"gate-{tracker.experiment_name}"

    def train(model: SGDClassifier, promote: str) -> object:
        return train_and_log(
            model, classification, tracker=tracker, client=client, register_as=name,
            promote=promote,
        )  # fmt: skip

    first = train(_good(), "if-better")
    assert first.promotion.promoted and first.promotion.holder_version is None
    assert alias_version(name, "champion", settings=settings) == "1"

    worse = train(_worse(), "if-better")
    gate = worse.promotion
    assert worse.registered_version == "2" and not gate.promoted
    assert gate.holder_version == "1" and gate.metric == "accuracy"
    assert gate.score < gate.holder_score  # both scored on the same validation blocks
    assert gate.holder_score == pytest.approx(first.result.final_scores["accuracy"])
    assert alias_version(name, "champion", settings=settings) == "1"

    # The gateway follows the alias: it still serves version 1.
    local = settings.model_copy(update={"gateway_backend": "local"})
    with serve_in_background([f"{name}@champion"], local) as gateway:
        example = classification.input_example(3)
        payload = {"dataframe_split": example.to_dict(orient="split", index=False)}
        reply = httpx.post(f"{gateway.url}/invocations", json=payload, timeout=60)
        assert reply.status_code == 200 and reply.json()["model_version"] == "1"

    forced = train(_worse(), "always")
    assert forced.promotion.promoted
    assert alias_version(name, "champion", settings=settings) == forced.registered_version == "3"

    kept = train(_good(), "never")
    assert not kept.promotion.promoted  # better, but never moves the alias
    assert alias_version(name, "champion", settings=settings) == "3"

    with pytest.raises(ConfigError, match="promote must be one of always, if-better, never"):
        train(_good(), "sometimes")


def test_the_cli_prints_both_scores_and_keeps_the_holder(
    cluster: LocalCluster,
    classification_path: object,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("SCALEML_SCHEDULER", cluster.scheduler_address)
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", str(settings.mlflow_tracking_uri))
    monkeypatch.setenv("SCALEML_EXPERIMENT", settings.experiment)
    name = f"cli-gate-{settings.experiment}"
    base = ["train", "--data", str(classification_path), "--target", "target"]
    base += ["--estimator", "SGDClassifier", "--param", "loss=log_loss", "--register", name]
    assert main(base) == 0
    assert f"registered models:/{name}@champion (version 1)" in capsys.readouterr().out
    assert main([*base, "--param", "alpha=50"]) == 0
    out = capsys.readouterr().out
    assert "accuracy on the same validation data:" in out
    [new] = [line for line in out.splitlines() if line.strip().startswith("new ")]
    [holder] = [line for line in out.splitlines() if line.strip().startswith("champion ")]
    assert new.split()[:3] == ["new", "version", "2"]
    assert holder.split()[:3] == ["champion", "version", "1"]
    assert float(new.split()[3]) < float(holder.split()[3])
    assert f"registered models:/{name}/2; champion stays at version 1" in out
    assert alias_version(name, "champion", settings=settings) == "1"
