"""``scaleml search``: one quick tracked run on a running cluster, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from distributed import LocalCluster
from mlflow import MlflowClient

from scaleml.cli import main
from scaleml.config import Settings
from scaleml.data import write_synthetic


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8,000 rows x 4 features in 8 Parquet blocks."""
    path = tmp_path_factory.mktemp("data") / "tiny"
    return write_synthetic(path, rows=8_000, features=4, block_rows=1_000, random_state=2)


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.json"
    space = {
        "alpha": {"distribution": "loguniform", "low": 1e-5, "high": 1},
        "penalty": ["l2", "elasticnet"],
    }
    path.write_text(json.dumps(space))
    return path


def test_search_runs_tracks_and_registers(
    cluster: LocalCluster,
    settings: Settings,
    tiny_path: Path,
    space_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("SCALEML_SCHEDULER", cluster.scheduler_address)
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", str(settings.mlflow_tracking_uri))
    monkeypatch.setenv("SCALEML_EXPERIMENT", settings.experiment)
    name = f"cli-{settings.experiment}"
    argv = ["search", "--data", str(tiny_path), "--target", "target"]
    argv += ["--estimator", "SGDClassifier", "--param", "loss=log_loss", "--space", str(space_file)]
    argv += ["--method", "hyperband", "--max-iter", "9", "--random-state", "0"]
    argv += ["--register", name, "--top", "3"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert "hyperband search" in err and "best=" in err  # the live progress bar
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "model", "score", "calls", "params"]
    assert lines[1].split()[0] == "1" and '"alpha"' in lines[1]
    assert len([line for line in lines if line[:4].strip().isdigit()]) == 3
    assert f"registered models:/{name}@champion (version 1)" in out
    store = MlflowClient(settings.mlflow_tracking_uri)
    experiment = store.get_experiment_by_name(settings.experiment)
    runs = store.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and f"MLflow run {parents[0].info.run_id}" in out
    assert len(runs) - 1 == parents[0].data.metrics["n_models"] == 17  # Hyperband, max_iter=9
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert parents[0].data.params["estimator.loss"] == "log_loss"
    # The model Hyperband chose (and registered) is named, whatever its rank.
    chosen = parents[0].data.tags["scaleml.best_model_id"]
    assert f"chosen (logged and registered): model {chosen}, rank" in out
    assert "best bracket's survivors" in out
    marked = [line for line in lines if line.endswith("<- chosen")]
    assert all(line.split()[1] == chosen for line in marked) and len(marked) <= 1
    path = store.download_artifacts(parents[0].info.run_id, "leaderboard.json")
    rows = json.loads(Path(path).read_text())["rows"]
    assert [str(r["model_id"]) for r in rows if r["chosen"]] == [chosen]
    assert len(rows) == 17 and [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)


def _fails(argv: list[str], capsys: pytest.CaptureFixture, expected: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert expected in err, err


def test_bad_input_exits_2_with_one_line(
    tiny_path: Path, space_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["search", "--data", str(tiny_path), "--target", "target"]
    sgd = [*base, "--estimator", "SGDClassifier"]
    _fails([*sgd, "--space", str(space_file)], capsys, "Missing option '--method'")
    _fails([*sgd, "--space", str(space_file), "--method", "bayes"], capsys, "'bayes' is not one")
    _fails([*sgd, "--space", str(tmp_path / "no.json"), "--method", "grid"], capsys, "no such file")
    _fails([*sgd, "--space", "{alpha: 1}", "--method", "grid"], capsys, "not valid JSON")
    _fails([*sgd, "--space", '{"alpha": 1}', "--method", "grid"], capsys, "'alpha' must be a list")
    _fails(
        [*sgd, "--space", str(space_file), "--method", "grid"],
        capsys,
        "'alpha': a grid search needs a finite list",
    )
    _fails(
        [*sgd, "--space", '{"penalty": ["l2", "l3"]}', "--method", "grid"],
        capsys,
        "parameter 'penalty': value 'l3' is refused",
    )
    _fails(
        [*sgd, "--space", '{"alpha": [NaN, 0.1]}', "--method", "hyperband"],
        capsys,
        "parameter 'alpha': value nan is refused",
    )
    _fails(
        [*sgd, "--space", '{"alfa": [1]}', "--method", "random"],
        capsys,
        "'alfa' is not a parameter of SGDClassifier",
    )
    _fails(
        [
            *base,
            "--estimator",
            "LogisticRegression",
            "--space",
            '{"C": [1]}',
            "--method",
            "halving",
        ],
        capsys,
        "needs an estimator with partial_fit",
    )
    _fails(
        [*sgd, "--space", str(space_file), "--method", "hyperband", "--n-initial-parameters", "5"],
        capsys,
        "--n-initial-parameters does not apply to --method hyperband",
    )
    _fails(
        [*sgd, "--space", str(space_file), "--method", "incremental", "--scoring", "acc"],
        capsys,
        "scoring must be a scikit-learn scorer name",
    )
    _fails(
        [*sgd, "--space", str(space_file), "--method", "incremental", "--option", "pat=3"],
        capsys,
        "unknown search option(s) ['pat']",
    )
    _fails(
        [
            "search",
            "--data",
            str(tmp_path / "none"),
            "--target",
            "target",
            "--estimator",
            "SGDClassifier",
            "--space",
            str(space_file),
            "--method",
            "incremental",
        ],
        capsys,
        "no such file",
    )


def test_the_method_choices_are_the_search_stages_methods() -> None:
    from scaleml.cli._search import _METHODS
    from scaleml.search import SEARCH_METHODS

    assert _METHODS == SEARCH_METHODS


def _cli_env(monkeypatch: pytest.MonkeyPatch, cluster: LocalCluster, settings: Settings) -> None:
    monkeypatch.setenv("SCALEML_SCHEDULER", cluster.scheduler_address)
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", str(settings.mlflow_tracking_uri))
    monkeypatch.setenv("SCALEML_EXPERIMENT", settings.experiment)


@pytest.mark.timeout(240)  # dask-ml alone retries the failed fit task forever
def test_a_candidate_that_fails_at_fit_ends_the_search_with_exit_2(
    cluster: LocalCluster,
    settings: Settings,
    tiny_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    _cli_env(monkeypatch, cluster, settings)
    argv = ["search", "--data", str(tiny_path), "--target", "target"]
    argv += ["--estimator", "LogisticRegression", "--space", '{"l1_ratio": [0.0, 0.5]}']
    argv += ["--method", "grid", "--option", "cv=2"]
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert last.startswith("error: a candidate of the search failed to fit: ValueError: Solver")
    store = MlflowClient(settings.mlflow_tracking_uri)
    experiment = store.get_experiment_by_name(settings.experiment)
    assert {r.info.status for r in store.search_runs([experiment.experiment_id])} == {"FAILED"}


@pytest.mark.timeout(240)
def test_a_model_that_fails_in_partial_fit_ends_an_adaptive_search_with_exit_2(
    cluster: LocalCluster,
    settings: Settings,
    tiny_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    # alpha=0 passes SGDClassifier's constraints; with the default learning rate, partial_fit
    # refuses it.
    _cli_env(monkeypatch, cluster, settings)
    argv = ["search", "--data", str(tiny_path), "--target", "target", "--estimator"]
    argv += ["SGDClassifier", "--space", '{"alpha": [0.0, 0.001]}']
    argv += ["--method", "incremental", "--max-iter", "3"]
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: a model of the search failed to fit: ValueError:")
    assert "alpha must be > 0" in last
    store = MlflowClient(settings.mlflow_tracking_uri)
    experiment = store.get_experiment_by_name(settings.experiment)
    statuses = {r.info.status for r in store.search_runs([experiment.experiment_id])}
    assert "FINISHED" not in statuses and "RUNNING" not in statuses


def test_random_state_seeds_the_estimator_too(
    cluster: LocalCluster,
    settings: Settings,
    tiny_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    import mlflow

    _cli_env(monkeypatch, cluster, settings)
    argv = ["search", "--data", str(tiny_path), "--target", "target", "--estimator"]
    argv += ["SGDClassifier", "--space", '{"alpha": [0.0001, 0.001]}', "--method", "random"]
    argv += ["--n-initial-parameters", "2", "--option", "cv=2", "--random-state", "3"]
    models = []
    for _ in range(2):
        assert main(argv) == 0
        out = capsys.readouterr().out.splitlines()
        [uri] = [line.split()[1] for line in out if line.startswith("model ")]
        models.append(mlflow.sklearn.load_model(uri))
    assert models[0].random_state == 3
    np.testing.assert_array_equal(models[0].coef_, models[1].coef_)
