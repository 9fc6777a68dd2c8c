"""End to end: a training logs its contract and provenance; one gateway process serves the
model with contracts enforced, warned and (for a model logged before contracts) off; drift
on /metrics and /models/NAME/drift; a hot swap to a version trained on other data brings its
own contract and fresh windows; the promotion warns about the champion's contract."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from distributed import Client
from mlflow import MlflowClient
from sklearn.linear_model import SGDClassifier
from tritonclient.utils import InferenceServerException

from scaleml.cli import main
from scaleml.config import Settings
from scaleml.coordinator.runners import JobContext, run_job
from scaleml.coordinator.specs import parse_spec
from scaleml.data import Dataset
from scaleml.monitor import contract
from scaleml.tracking import Tracker, register, train_and_log
from tests.gateway.conftest import GatewayProcess, log_and_register, train_sklearn

pytestmark = pytest.mark.slow
T = 30.0


@pytest.fixture(scope="module")
def store(mlflow_uri: str) -> Settings:
    return Settings(mlflow_tracking_uri=mlflow_uri, experiment=f"mon-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def dataset(classification_path: Path) -> Dataset:
    return Dataset(str(classification_path), target="target")


@pytest.fixture(scope="module")
def names(store: Settings, dataset: Dataset, client: Client) -> dict[str, str]:
    """``enforce`` and ``warn``: the same trained model under two names; ``legacy``: a model
    logged without a contract."""
    suffix = uuid.uuid4().hex[:6]
    out = {m: f"{m}-{suffix}" for m in ("enforce", "warn", "legacy")}
    tracker = Tracker(store)
    trained = train_and_log(
        SGDClassifier(random_state=0),
        dataset,
        tracker=tracker,
        register_as=out["warn"],
        epochs=1,
        client=client,
    )
    register(trained.model_uri, out["enforce"], tracker=tracker)
    MlflowClient(store.mlflow_tracking_uri).set_registered_model_tag(
        out["enforce"], "scaleml.contract_mode", "enforce"
    )
    log_and_register(store, train_sklearn(), out["legacy"])
    return out


def _rows(dataset: Dataset, blocks: list[int], n: int) -> pd.DataFrame:
    frame = pd.concat(list(dataset.iter_blocks(blocks)), ignore_index=True)
    return frame[dataset.features].head(n)


def _post(url: str, name: str, rows: pd.DataFrame) -> httpx.Response:
    body = {"dataframe_split": rows.to_dict(orient="split")}
    return httpx.post(f"{url}/models/{name}/invocations", json=body, timeout=T)


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_training_logs_a_contract_and_provenance_shown_on_the_model_card(
    names, store, dataset, monkeypatch, capsys
) -> None:
    found = contract(f"models:/{names['warn']}@champion", settings=store)
    assert set(found.features) == set(dataset.features) and found.output is not None
    found.to_pandera().validate(dataset.read_block(dataset.train_blocks[0])[dataset.features])
    version = MlflowClient(store.mlflow_tracking_uri).get_model_version(names["warn"], "1")
    assert version.tags["scaleml.cluster_workers"] == "2"
    assert len(version.tags["scaleml.git_commit"]) == 40
    assert version.tags["scaleml.git_dirty"] in ("true", "false")
    assert version.tags["scaleml.dataset_fingerprint"] == dataset.fingerprint
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", str(store.mlflow_tracking_uri))
    assert main(["models", "show", f"{names['warn']}@champion"]) == 0
    card = capsys.readouterr().out
    assert f"model card: {names['warn']} version 1" in card
    for expected in ("aliases     champion", "cluster_workers", "host", "input   f000",
                     "best_val_accuracy", "feature  f003", "output   prediction",
                     "fingerprint"):  # fmt: skip
        assert expected in card, expected
    assert main(["models", "show", f"{names['legacy']}/1"]) == 0
    assert "has no contract.json" in capsys.readouterr().out
    assert main(["models", "show", "no-such-model-here"]) == 2


def test_gateway_enforces_warns_tracks_drift_and_swaps_contracts(
    names, store, dataset, client, tmp_path
) -> None:
    gateway = GatewayProcess(
        [names["enforce"], names["warn"], names["legacy"]],
        store,
        "local",
        contract_modes=f"{names['warn']}=warn",
        drift_window_rows="4000",
    )
    try:
        gateway.wait_ready()
        url = gateway.url
        held = contract(f"models:/{names['warn']}/1", settings=store)
        top = held.features["f003"].maximum
        good = _rows(dataset, dataset.validation_blocks, 8000)
        bad = good.head(3).copy()
        bad.loc[1, "f003"] = top + 1.0

        refused = _post(url, names["enforce"], bad)
        assert refused.status_code == 400
        message = refused.json()["message"]
        assert "row 1, column 'f003'" in message and f"maximum {top:g}" in message
        assert _post(url, names["enforce"], good.head(3)).status_code == 200
        _tritonclient_enforced(url, names["enforce"], bad, f"maximum {top:g}")
        assert _post(url, names["warn"], bad).status_code == 200
        assert _post(url, names["legacy"], bad.rename(columns=_legacy_names)).status_code == 200
        metrics = httpx.get(f"{url}/metrics", timeout=T).text
        counted = _metric(
            metrics, "scaleml_contract_violations_total", model=names["warn"], column="f003"
        )
        assert counted == 1.0
        legacy = httpx.get(f"{url}/models/{names['legacy']}/drift", timeout=T).json()
        assert legacy["contract_mode"] == "off"
        assert any("served with contracts off" in line for line in gateway.lines)

        # In distribution: every gauge under "no change".
        for start in range(0, 8000, 1000):
            assert _post(url, names["warn"], good.iloc[start : start + 1000]).status_code == 200
        report = httpx.get(f"{url}/models/{names['warn']}/drift", timeout=T).json()
        assert report["rows_seen"] == 8003 and report["window_rows"] == 4000
        assert {e["status"] for e in report["features"].values()} == {"no change"}
        metrics = httpx.get(f"{url}/metrics", timeout=T).text
        gauges = re.findall(
            rf'scaleml_feature_drift\{{.*model="{names["warn"]}".*\}} (\S+)', metrics
        )
        assert len(gauges) == 16 and max(float(g) for g in gauges) < 0.1
        assert _metric(metrics, "scaleml_prediction_drift", model=names["warn"]) is not None

        # One feature moved by one standard deviation: only its gauges are significant.
        shifted = good.copy()
        shifted["f005"] += held.features["f005"].std
        for start in range(0, 8000, 1000):
            _post(url, names["warn"], shifted.iloc[start : start + 1000])
        report = httpx.get(f"{url}/models/{names['warn']}/drift", timeout=T).json()
        moved = {n for n, e in report["features"].items() if e["status"] != "no change"}
        assert moved == {"f005"} and report["features"]["f005"]["status"] == "significant"
        metrics = httpx.get(f"{url}/metrics", timeout=T).text
        psi = _metric(
            metrics, "scaleml_feature_drift", model=names["warn"], feature="f005", metric="psi"
        )
        assert psi is not None and psi > 0.25

        # A new version trained on data where f003 spans three times the range.
        wide = pd.concat(list(dataset.iter_blocks([0, 1])), ignore_index=True)
        wide["f003"] *= 3.0
        (tmp_path / "wide").mkdir()
        for i in range(3):
            wide.iloc[i::3].to_parquet(tmp_path / "wide" / f"part-{i}.parquet")
        retrained = train_and_log(
            SGDClassifier(random_state=1),
            Dataset(str(tmp_path / "wide"), target="target"),
            tracker=Tracker(store),
            register_as=names["warn"],
            promote="always",
            epochs=1,
            client=client,
        )
        assert retrained.promotion is not None and retrained.promotion.promoted
        warned = retrained.promotion.contract_warnings
        assert any("'f003'" in line and "champion" in line for line in warned), warned
        assert any("breaks champion version 1's contract" in line
                   for line in retrained.promotion.lines())  # fmt: skip
        swapped = _wait_for_version(url, names["warn"], "2")
        assert swapped["rows_seen"] == 0  # fresh windows
        assert _post(url, names["warn"], bad).status_code == 200
        metrics = httpx.get(f"{url}/metrics", timeout=T).text
        assert (
            _metric(metrics, "scaleml_contract_violations_total", model=names["warn"], version="2")
            is None
        )  # top + 1 is inside version 2's contract
    finally:
        gateway.stop()


def _tritonclient_enforced(url: str, name: str, bad: pd.DataFrame, bound: str) -> None:
    """tritonclient's HTTP client with its default options (binary tensors in and out) on the
    v2 infer route: the out-of-range row is refused naming its column and bound, the rows
    inside the contract are answered."""
    tc = triton.InferenceServerClient(url=url.removeprefix("http://"), network_timeout=T)
    try:

        def tensors(rows: pd.DataFrame) -> list[triton.InferInput]:
            inputs = []
            for column in rows.columns:
                tensor = triton.InferInput(column, [len(rows)], "FP64")
                tensor.set_data_from_numpy(rows[column].to_numpy())
                inputs.append(tensor)
            return inputs

        with pytest.raises(InferenceServerException) as refused:
            tc.infer(name, tensors(bad))
        message = refused.value.message()
        assert refused.value.status() == "400"
        assert "row 1, column 'f003'" in message and bound in message, message
        answered = tc.infer(name, tensors(bad.drop(index=1)))
        assert answered.as_numpy("predictions").shape == (len(bad) - 1,)
    finally:
        tc.close()


def _legacy_names(name: str) -> str:
    return f"f{int(name[1:])}"


def _wait_for_version(url: str, name: str, version: str) -> dict:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report = httpx.get(f"{url}/models/{name}/drift", timeout=T).json()
        if report.get("version") == version:
            return report
        time.sleep(0.2)
    raise AssertionError(f"{name} did not swap to version {version}")


def test_validate_finds_the_shifted_feature_on_the_cluster(
    names, store, dataset, client, tmp_path, monkeypatch, capsys, browser
) -> None:
    held = contract(f"models:/{names['enforce']}/1", settings=store)
    frame = pd.concat(list(dataset.iter_blocks()), ignore_index=True)
    frame["f001"] += held.features["f001"].std
    (tmp_path / "shifted").mkdir()
    for i in range(5):
        frame.iloc[i::5].to_parquet(tmp_path / "shifted" / f"part-{i}.parquet")
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", str(store.mlflow_tracking_uri))
    monkeypatch.setenv("SCALEML_SCHEDULER", client.scheduler.address)
    report = tmp_path / "drift.html"
    model = f"models:/{names['enforce']}/1"
    code = main(["validate", "--model", model, "--data", str(tmp_path / "shifted"),
                 "--report", str(report), "--json"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    found = json.loads(out[: out.rindex("}") + 1])
    assert found["drifted"] == ["f001"] and found["rows"] == len(frame)
    assert found["features"]["f001"]["status"] == "significant"
    page = browser.open(report.as_uri())
    page.wait_for_selector("text=Drifted: f001")
    page.wait_for_selector("canvas")  # the plots are drawn
    assert browser.errors == []
    page.screenshot(path=str(tmp_path / "drift.png"), full_page=True)

    # The coordinator's validate job kind runs the same check on the job's client.
    spec = parse_spec(
        {"kind": "validate", "model": model, "dataset": {"path": str(tmp_path / "shifted")}}
    )
    result = run_job(spec, JobContext(job_id="validate-1", settings=store, client=client))
    assert result["drifted"] == ["f001"] and result["rows"] == len(frame)
    json.dumps(result)  # stored as the job's JSON result

    frame["extra"] = np.arange(len(frame))
    (tmp_path / "other").mkdir()
    frame.to_parquet(tmp_path / "other" / "part-0.parquet")
    assert main(["validate", "--model", model, "--data", str(tmp_path / "other")]) == 2
    assert "columns not in the contract: ['extra']" in capsys.readouterr().err
    legacy = f"models:/{names['legacy']}/1"
    assert main(["validate", "--model", legacy, "--data", str(tmp_path / "shifted")]) == 2
    assert "has no contract.json" in capsys.readouterr().err
