"""``scaleml serve`` refuses bad input with one line and exit code 2."""

from __future__ import annotations

import pytest

from scaleml.cli import main


def test_a_malformed_model_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "churn/latest/1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: model must be NAME, NAME@alias or NAME/version, got 'churn/latest/1'"
    )


def test_an_unknown_registered_model_fails_fast(
    mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", mlflow_uri)
    assert main(["serve", "--model", "no-such-model@champion", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # MLflow may log a store migration first
    assert err[-1] == "error: no registered model 'no-such-model' in the MLflow registry"
    assert sum(line.startswith("error:") for line in err) == 1
